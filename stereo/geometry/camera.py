"""Pinhole cameras in the Strecha format, projection, epipolar geometry, triangulation.

Conventions (``../shared/data/README.md``): ``R`` is camera-to-world (its columns are the
camera axes in the world frame), ``C`` the centre in world coordinates (metres), projection
``x ~ K · Rᵀ · (X − C)``, pixel centres at integer coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stereo.errors import StereoError

#: pixels (K) and world units (C) beyond this are not a camera (their products overflow)
MAX_CAMERA_VALUE = 1e12


@dataclass(frozen=True)
class Camera:
    """A calibrated pinhole camera.

    Attributes:
        K: ``(3, 3)`` intrinsics, pixels.
        R: ``(3, 3)`` camera-to-world rotation.
        C: ``(3,)`` centre, world units (metres).
        width, height: image size in pixels.
    """

    K: np.ndarray
    R: np.ndarray
    C: np.ndarray
    width: int
    height: int

    @property
    def P(self) -> np.ndarray:
        """``(3, 4)`` projection matrix ``K [Rᵀ | −Rᵀ C]``."""
        return self.K @ np.c_[self.R.T, -self.R.T @ self.C]

    def to_camera(self, X: np.ndarray) -> np.ndarray:
        """World points ``(N, 3)`` → camera-frame points ``(N, 3)`` (z = depth)."""
        return (np.asarray(X, np.float64) - self.C) @ self.R

    def project(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(N, 3)`` → pixels ``(N, 2)`` and depths ``(N,)`` (z, metres)."""
        Xc = self.to_camera(X)
        x = Xc @ self.K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            return x[:, :2] / x[:, 2:3], Xc[:, 2]

    def scaled(self, factor: float) -> Camera:
        """The camera of the image resized by ``factor`` (pixel centres stay at integers:
        ``x' = factor · (x + ½) − ½``)."""
        S = np.array([[factor, 0, 0.5 * factor - 0.5], [0, factor, 0.5 * factor - 0.5], [0, 0, 1]])
        return Camera(
            S @ self.K, self.R, self.C, round(self.width * factor), round(self.height * factor)
        )


def read_camera(path: str | Path) -> Camera:
    """Parse a Strecha ``.camera`` file (K 3 rows, distortion, R 3 rows, C, width height)."""
    path = Path(path)
    if not path.is_file():
        raise StereoError(f"camera file {path} does not exist")
    if path.stat().st_size > 64_000:
        raise StereoError(f"camera file {path} is {path.stat().st_size:,} bytes: not a camera file")
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        raise StereoError(f"camera file {path} is not text: not a Strecha .camera file") from None
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if len(rows) != 9:
        raise StereoError(
            f"camera file {path} has {len(rows)} rows, expected 9 "
            "(K: 3, distortion: 1, R: 3, C: 1, width height: 1)"
        )
    try:
        K = np.array(rows[0:3], dtype=np.float64)
        R = np.array(rows[4:7], dtype=np.float64)
        C = np.array(rows[7], dtype=np.float64)
        width, height = (int(float(v)) for v in rows[8])
    except ValueError as error:
        raise StereoError(f"camera file {path} does not parse: {error}") from None
    if K.shape != (3, 3) or R.shape != (3, 3) or C.shape != (3,):
        raise StereoError(f"camera file {path}: K and R need 3 numbers a row and C three")
    camera = Camera(K, R, C, width, height)
    check_camera(camera, f"camera file {path}")
    return camera


def check_camera(camera: Camera, what: str = "camera") -> None:
    """Raise a one-line :class:`StereoError` unless ``camera`` can be a real pinhole camera:
    finite numbers, positive focal lengths, ``det K > 0``, ``R`` a rotation (orthonormal,
    ``det R = +1``: not a reflection) and a positive image size."""
    K, R, C = camera.K, camera.R, camera.C
    if not (np.isfinite(K).all() and np.isfinite(R).all() and np.isfinite(C).all()):
        raise StereoError(f"{what}: K, R and C must be finite numbers (found NaN or inf)")
    if max(np.abs(K).max(), np.abs(C).max()) > MAX_CAMERA_VALUE:
        raise StereoError(
            f"{what}: K or C holds values above {MAX_CAMERA_VALUE:g}; check the file's units"
        )
    if K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] <= 0 or np.linalg.det(K) <= 0:
        raise StereoError(
            f"{what}: K needs positive focal lengths K[0,0], K[1,1] (got {K[0, 0]:g}, "
            f"{K[1, 1]:g}), K[2,2] > 0 and det K > 0; check the intrinsics"
        )
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4):
        raise StereoError(f"{what}: R is not a rotation matrix (R Rᵀ ≠ I)")
    if np.linalg.det(R) < 0:
        raise StereoError(
            f"{what}: R is a reflection (det R = -1), not a rotation; a camera-to-world "
            "rotation has det +1 (flip the sign of one axis in the file)"
        )
    if camera.width < 1 or camera.height < 1:
        raise StereoError(f"{what}: image size {camera.width}x{camera.height} is not positive")


def skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrix ``[v]ₓ``."""
    return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


def fundamental_matrix(cam1: Camera, cam2: Camera) -> np.ndarray:
    """``F`` with ``x₂ᵀ F x₁ = 0`` for pixels ``x₁`` of ``cam1`` and ``x₂`` of ``cam2``.

    Kept here: four lines of NumPy from K, R, C (kornia's ``fundamental_from_projections``
    gives the same from torch tensors of P; OpenCV has no form from calibrated cameras)."""
    R_rel = cam2.R.T @ cam1.R  # camera-1 frame → camera-2 frame
    t_rel = cam2.R.T @ (cam1.C - cam2.C)
    E = skew(t_rel) @ R_rel
    F = np.linalg.inv(cam2.K).T @ E @ np.linalg.inv(cam1.K)
    return F / np.linalg.norm(F)


def epipolar_distance(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """Symmetric point-to-epipolar-line distance ``(N,)`` in pixels: the larger of the two.

    Kept here: the pipeline needs the larger of the two distances in pixels, which neither
    OpenCV (``computeCorrespondEpilines`` gives lines only) nor kornia (squared sums) gives."""
    h1 = np.c_[x1, np.ones(len(x1))]
    h2 = np.c_[x2, np.ones(len(x2))]
    l2 = h1 @ F.T  # lines in image 2
    l1 = h2 @ F  # lines in image 1
    num = np.abs(np.sum(h2 * l2, axis=1))
    d2 = num / np.hypot(l2[:, 0], l2[:, 1])
    d1 = num / np.hypot(l1[:, 0], l1[:, 1])
    return np.maximum(d1, d2)


def triangulate(projections: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Linear (DLT) triangulation of tracks with the same number of views.

    Kept here: OpenCV's ``triangulatePoints`` takes two views, castle's tracks up to 19; this
    solves every track of a view count in one batched SVD.

    Args:
        projections: ``(T, V, 3, 4)`` projection matrix of each view of each track.
        xy: ``(T, V, 2)`` pixel observations.

    Returns:
        ``(T, 3)`` world points.
    """
    rows_x = xy[..., 0:1] * projections[..., 2, :] - projections[..., 0, :]
    rows_y = xy[..., 1:2] * projections[..., 2, :] - projections[..., 1, :]
    A = np.concatenate([rows_x, rows_y], axis=1)  # (T, 2V, 4)
    A = A / np.linalg.norm(A, axis=2, keepdims=True)
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1, :]
    return X[:, :3] / X[:, 3:4]
