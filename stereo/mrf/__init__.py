"""Global optimisation of label volumes: graph cuts on a Markov random field."""
