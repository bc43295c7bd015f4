"""What the benchmark scripts (``benchmarks/``) share, so that they import the package and
never each other.

* ``results`` — the JSON + Markdown pair each benchmark writes, merged across runs.
* ``specs`` — the one parser of method specs (``NAME:wta:flat:0.1``) and pair specs
  (``SCENE:r:k``).
* ``strecha`` — a Strecha protocol pair at the working size with its sparse ground truth.
* ``machine`` — the hardware line every table states.
"""
