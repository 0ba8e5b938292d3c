"""Interactive dynamics: the spectral volume as an image-space modal basis (GID, Sec. 5).

This module owns the simulation behind "drag a point, release, and the scene springs back". Each
band k >= 1 of a Motion's spectrum S_k (complex (2, H, W)) is treated as a mode shape with one
complex modal coordinate q_k. The displacement field is the same sum that plays the loop back,

    F(p) = Re sum_k S_k(p) q_k                       (playback uses q_k = band_factors(K, T, t))

so whatever renders a loop frame from K complex band factors (the torch splat, the GL mesh warp)
also renders a simulated frame from the current q.

Modes. The DC band (k = 0) is skipped: q_0 stays 0. Band k oscillates at f_k = k * fps / T Hz, so
omega_k = 2 pi f_k * stiffness (a user factor). Unit modal mass; Rayleigh damping
gamma_k = alpha + beta * omega_k^2 (high bands die out fast, as in real foliage). Every complex
q_k (real and imaginary parts alike) obeys

    q'' + gamma q' + omega^2 q = force.

Pulls. A pull at pixel p (fractional: S is sampled bilinearly) by the vector d, direction
u = d / |d|, projects each mode onto the pull, c_k = u_x S_x,k(p) + u_y S_y,k(p), and sets

    q_k = gain * |d| * conj(c_k) / sum_j |c_j|^2          (sum over the bands j >= 1)

Then u . F(p) = Re sum_k c_k q_k = gain * |d| exactly: with gain 1 the grabbed point moves by d
along the pull (the component across the pull is whatever the modes couple into it, usually
small). This is the paper's q_k = gain * |d| * conj(c_k) divided by the normalization
sum_j |c_j|^2. A pixel that no mode moves (sum_j |c_j|^2 == 0) cannot be pulled: q stays 0.
A flick (an impulse) uses the same formula for the velocities: the point starts moving at the
flick velocity (pixels per second) along its direction.

Folds. A pull that could fold the displaced image over itself (tearing and smearing it in the
preview: noisy or weak modes at the grabbed pixel ask for huge q) is scaled down as a whole,
q <- s q with the largest s <= 1 for which sum_k |q_k| |grad S_k(p)| <= MAX_STRAIN at every pixel.
That bounds the field's Jacobian J, so det(I + J) > 0 at every phase of the swing that follows,
not just at the moment of the pull. The grabbed point then moves less than the pull, as far as
the scene's modes let it go without tearing.

State and superposition. The simulator keeps a free state (q, q') that always evolves, plus the
held pull q_held (set by grab, velocity 0). What renders is q = q_free + q_held. release() adds
q_held into the free state. Since the equations are linear, a new grab, poke or flick simply adds
to whatever is already moving.

Integrators (per step of dt seconds, split into n equal substeps h = dt / n):
    semi-implicit  (default) symplectic Euler with the damping taken implicitly:
                       q' <- (q' + h (force - omega^2 q)) / (1 + h gamma);   q <- q + h q'
                   stable for h omega < 2 whatever gamma is; n is chosen so that
                   h * omega_max <= MAX_PHASE_PER_SUBSTEP (0.5 rad). For damped modes it also keeps
                   h <= gamma_k / omega_k^2 (half of the bound 2 gamma / omega^2 under which this
                   scheme's energy never rises in a substep), unless that would take more than
                   DISSIPATIVE_REFINEMENT (32) times the substeps (weakly damped stiff modes, where
                   the energy then wobbles a little as in undamped symplectic Euler, still bounded).
    explicit       plain forward Euler: q <- q + h q';  q' <- q' + h (force - gamma q' - omega^2 q).
                   Its amplification per substep is 1 - h gamma + h^2 omega^2, so it is only stable
                   for h < gamma_k / omega_k^2: n is chosen so that h <= gamma_k / (2 omega_k^2),
                   h * omega_max <= 0.1 and h * gamma_max <= 0.5. It needs damping in every mode
                   (alpha > 0 or beta > 0) and is here as a reference, not for speed.

Pure numpy: no Qt, no GL, no files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from app.core.spectral import Motion

INTEGRATORS = ("semi-implicit", "explicit")
MAX_PHASE_PER_SUBSTEP = 0.5  # radians of the fastest mode per semi-implicit substep
EXPLICIT_MAX_PHASE_PER_SUBSTEP = 0.1  # the same for explicit Euler (accuracy, not stability)
EXPLICIT_MAX_DAMPING_PER_SUBSTEP = 0.5  # h * gamma_max for explicit Euler
DISSIPATIVE_REFINEMENT = 32  # at most this many times the substeps to make the energy fall monotonically
MAX_SUBSTEPS = 10_000  # per step; a parameter set that needs more is refused
REFERENCE_FRAME_S = 1.0 / 30.0  # the frame time the substep limit is checked against
MAX_STRAIN = 0.8  # |grad F| bound of a pull: det(I + grad F) >= (1 - 0.8)^2 > 0, the image never folds
FOLD_CHECK_STRIDE = 2  # the fold check looks at every 2nd pixel of each axis


@dataclass
class ModalParameters:
    """How the scene responds to a pull.

    stiffness: scales every mode's angular frequency (2 makes everything swing twice as fast).
    alpha, beta: Rayleigh damping gamma_k = alpha + beta * omega_k^2 (1/s).
    gain: scales every pull and flick (1: the grabbed point moves by the pull).
    integrator: "semi-implicit" (symplectic Euler, the default) or "explicit" (forward Euler).
    """

    stiffness: float = 1.0
    alpha: float = 0.4
    beta: float = 0.08
    gain: float = 1.0
    integrator: str = "semi-implicit"


@dataclass
class ModalState:
    """Modal coordinates q (complex128 (K,)) and their velocities dq/dt (complex128 (K,)); q_0 = 0."""

    q: np.ndarray
    velocity: np.ndarray = field(default=None)

    def __post_init__(self):
        self.q = np.asarray(self.q, np.complex128).copy()
        if self.velocity is None:
            self.velocity = np.zeros_like(self.q)
        self.velocity = np.asarray(self.velocity, np.complex128).copy()

    def copy(self) -> "ModalState":
        return ModalState(self.q, self.velocity)


def mode_frequencies(motion: Motion, stiffness: float = 1.0) -> np.ndarray:
    """(K,) angular frequency omega_k = 2 pi (k fps / T) * stiffness in rad/s; omega_0 = 0."""
    return 2 * np.pi * motion.frequencies_hz * float(stiffness)


def rayleigh_damping(omega: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """(K,) damping gamma_k = alpha + beta * omega_k^2 in 1/s."""
    return float(alpha) + float(beta) * np.square(omega)


def mode_gradients(spectrum: np.ndarray, stride: int = 1) -> np.ndarray:
    """Spatial derivatives of every mode: complex64 (K, 4, h, w) = (dSx/dx, dSx/dy, dSy/dx, dSy/dy),
    central differences at full resolution, sampled every `stride` pixels."""
    num_bands, _, height, width = spectrum.shape
    if height < 2 or width < 2:
        return np.zeros((num_bands, 4, 0, 0), np.complex64)
    gradients = []
    for component in (0, 1):
        plane = spectrum[:, component]  # (K, H, W)
        gradients += [np.gradient(plane, axis=2)[:, ::stride, ::stride], np.gradient(plane, axis=1)[:, ::stride, ::stride]]
    return np.stack(gradients, axis=1).astype(np.complex64)


def sample_spectrum(spectrum: np.ndarray, x: float, y: float) -> np.ndarray:
    """Bilinear sample of spectrum (K, 2, H, W) at pixel (x, y) -> complex (K, 2); x, y clamp to the image."""
    height, width = spectrum.shape[2:]
    x = min(max(float(x), 0.0), width - 1.0)
    y = min(max(float(y), 0.0), height - 1.0)
    left, top = int(math.floor(x)), int(math.floor(y))
    right, bottom = min(left + 1, width - 1), min(top + 1, height - 1)
    fx, fy = x - left, y - top
    corner = lambda row, column: spectrum[:, :, row, column].astype(np.complex128)  # noqa: E731 (K, 2)
    return ((1 - fy) * ((1 - fx) * corner(top, left) + fx * corner(top, right))
            + fy * ((1 - fx) * corner(bottom, left) + fx * corner(bottom, right)))


class ModalSimulator:
    """A photo's modes, pulled and flicked by the user, stepped in time.

    grab(x, y, dx, dy) starts or moves a held pull; release() lets go; poke and flick add an
    instant displacement or velocity; step(dt) advances time; band_factors() is the current q
    (complex (K,)) a renderer consumes; displacement() is the field F (2, H, W).
    """

    def __init__(self, motion: Motion, params: ModalParameters | None = None):
        self.motion = motion
        self.params = params or ModalParameters()
        if self.params.integrator not in INTEGRATORS:
            raise ValueError(f"Unknown integrator '{self.params.integrator}'; choose semi-implicit or explicit.")
        if not float(self.params.stiffness) > 0:
            raise ValueError(f"stiffness must be positive; got {self.params.stiffness}.")
        if float(self.params.alpha) < 0 or float(self.params.beta) < 0:
            raise ValueError(f"Damping must not be negative; got alpha={self.params.alpha}, beta={self.params.beta}.")
        num_bands = motion.num_bands
        self.omega = mode_frequencies(motion, self.params.stiffness)  # (K,)
        self.damping = rayleigh_damping(self.omega, self.params.alpha, self.params.beta)  # (K,)
        self.active = np.arange(num_bands) >= 1  # (K,) the DC band is not a mode
        self.damping[~self.active] = 0.0
        # Largest |S_k(p)| over the image, per band: bounds the displacement a mode can cause.
        magnitude = np.sqrt(np.square(np.abs(motion.spectrum)).sum(axis=1))  # (K, H, W)
        self.peak_amplitude = magnitude.reshape(num_bands, -1).max(axis=1).astype(np.float64)  # (K,)
        if self.params.integrator == "explicit":
            if np.any(self.damping[self.active] <= 0):
                raise ValueError("Explicit Euler needs damping in every mode (alpha > 0 or beta > 0); "
                                 "use the semi-implicit integrator.")
            if self.substep_count(REFERENCE_FRAME_S) > MAX_SUBSTEPS:
                raise ValueError("These parameters need too many explicit Euler substeps; "
                                 "use the semi-implicit integrator.")
        self.free = ModalState(np.zeros(num_bands))
        self.held_q = np.zeros(num_bands, np.complex128)
        self.holding = False
        self._gradient_norms = None  # (K, h * w) |G_k|_F, made by the first fold check

    @property
    def num_bands(self) -> int:
        return self.motion.num_bands

    @property
    def state(self) -> ModalState:
        """The state a renderer sees: q = q_free + q_held, velocity of the free part (a copy)."""
        return ModalState(self.free.q + self.held_q, self.free.velocity)

    def reset(self) -> None:
        """Everything at rest, nothing held."""
        self.free = ModalState(np.zeros(self.num_bands))
        self.held_q[:] = 0
        self.holding = False

    # --- user input --------------------------------------------------------------------------

    def mode_coefficients(self, x: float, y: float) -> np.ndarray:
        """S_k at pixel (x, y), bilinearly sampled: complex (K, 2), x then y; 0 for the DC band."""
        width, height = self.motion.width, self.motion.height
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
            raise ValueError(f"Point ({x:g}, {y:g}) lies outside the {width}x{height} image.")
        coefficients = sample_spectrum(self.motion.spectrum, x, y)  # (K, 2)
        coefficients[~self.active] = 0
        return coefficients

    def pull_response(self, x: float, y: float, dx: float, dy: float) -> np.ndarray:
        """Modal coordinates (complex (K,)) that move pixel (x, y) by (dx, dy) along the pull.

        q_k = gain * |d| * conj(c_k) / sum_j |c_j|^2 with c_k = u . S_k(x, y), u = d / |d|.
        """
        coefficients = self.mode_coefficients(x, y)  # (K, 2)
        length = math.hypot(float(dx), float(dy))
        if length == 0 or not math.isfinite(length):
            return np.zeros(self.num_bands, np.complex128)
        direction = np.array([dx, dy], np.float64) / length
        projection = coefficients @ direction  # (K,) c_k
        normalization = float(np.sum(np.abs(projection) ** 2))
        if normalization <= 1e-20:
            return np.zeros(self.num_bands, np.complex128)  # nothing moves this pixel
        q = float(self.params.gain) * length * np.conj(projection) / normalization
        return q * self.fold_limit(q)

    def fold_limit(self, q: np.ndarray) -> float:
        """The largest s in [0, 1] for which s * q cannot fold the image, whatever the modes' phases.

        At each pixel the field's Jacobian is J = Re sum_k q_k G_k (G_k the mode's 2x2 complex
        gradient); its norm is at most sum_k |q_k| |G_k|_F, and while that stays under 1,
        det(I + J) > 0: no fold, now or at any later phase of the swing (|q_k| only decays). Checked
        on every FOLD_CHECK_STRIDE-th pixel, where the gradient norms are computed once.
        """
        if self._gradient_norms is None:
            gradients = mode_gradients(self.motion.spectrum, FOLD_CHECK_STRIDE)  # (K, 4, h, w)
            norms = np.sqrt(np.square(np.abs(gradients)).sum(axis=1))  # (K, h, w) Frobenius
            self._gradient_norms = np.ascontiguousarray(norms.reshape(norms.shape[0], -1), np.float32)
        if self._gradient_norms.shape[1] == 0:
            return 1.0
        strain = np.einsum("k,kx->x", np.abs(q).astype(np.float32), self._gradient_norms, optimize=False)
        largest = float(strain.max())  # bound on |J| for q itself
        return 1.0 if largest <= MAX_STRAIN else MAX_STRAIN / largest

    def grab(self, x: float, y: float, dx: float, dy: float) -> None:
        """Start or update a held pull: pixel (x, y) is dragged by (dx, dy) pixels until release()."""
        self.held_q = self.pull_response(x, y, dx, dy)
        self.holding = True

    def release(self) -> None:
        """Let go of the held pull: it becomes part of the free state, at rest, and starts swinging."""
        self.free.q += self.held_q
        self.held_q = np.zeros(self.num_bands, np.complex128)
        self.holding = False

    def poke(self, x: float, y: float, dx: float, dy: float) -> None:
        """Instantly displace pixel (x, y) by (dx, dy) and let go (a grab and release in one)."""
        self.free.q += self.pull_response(x, y, dx, dy)

    def flick(self, x: float, y: float, vx: float, vy: float) -> None:
        """An impulse: pixel (x, y) starts moving at (vx, vy) pixels per second (added to its velocity)."""
        self.free.velocity += self.pull_response(x, y, vx, vy)

    # --- time --------------------------------------------------------------------------------

    def substep_count(self, dt: float) -> int:
        """How many substeps one step of dt seconds takes to stay stable (and, for damped modes, dissipative)."""
        dt = abs(float(dt))
        omega = self.omega[self.active]
        gamma = self.damping[self.active]
        if dt == 0 or omega.size == 0:
            return 1
        omega_max = float(omega.max())
        if self.params.integrator == "semi-implicit":
            stable_substep = MAX_PHASE_PER_SUBSTEP / omega_max
            largest_substep = stable_substep
            damped = gamma > 0
            if np.any(damped):
                dissipative_substep = float(np.min(gamma[damped] / omega[damped] ** 2))
                largest_substep = min(stable_substep,
                                      max(dissipative_substep, stable_substep / DISSIPATIVE_REFINEMENT))
        else:
            largest_substep = min(EXPLICIT_MAX_PHASE_PER_SUBSTEP / omega_max,
                                  EXPLICIT_MAX_DAMPING_PER_SUBSTEP / float(gamma.max()),
                                  0.5 * float(np.min(gamma / omega ** 2)))
        return max(1, int(math.ceil(dt / largest_substep - 1e-9)))

    def step(self, dt: float) -> None:
        """Advance the free state by dt seconds; a held pull stays where it is."""
        dt = float(dt)
        if not math.isfinite(dt) or dt < 0:
            raise ValueError(f"dt must be a non-negative number of seconds; got {dt}.")
        if dt == 0:
            return
        count = self.substep_count(dt)
        h = dt / count
        q, velocity = self.free.q, self.free.velocity
        omega_squared = np.square(self.omega)
        gamma = self.damping
        if self.params.integrator == "semi-implicit":
            velocity_scale = 1.0 / (1.0 + h * gamma)  # (K,) implicit damping
            for _ in range(count):
                velocity = (velocity - h * omega_squared * q) * velocity_scale
                q = q + h * velocity
        else:
            for _ in range(count):
                acceleration = -gamma * velocity - omega_squared * q
                q = q + h * velocity
                velocity = velocity + h * acceleration
        q[~self.active] = 0
        velocity[~self.active] = 0
        self.free.q, self.free.velocity = q, velocity

    # --- what renders ------------------------------------------------------------------------

    def band_factors(self) -> np.ndarray:
        """The current modal coordinates q = q_free + q_held: complex64 (K,), the renderer's band factors."""
        return (self.free.q + self.held_q).astype(np.complex64)

    def displacement(self) -> np.ndarray:
        """F = Re sum_k S_k q_k: float32 (2, H, W) pixels, x then y."""
        field = np.tensordot(self.band_factors(), self.motion.spectrum, axes=(0, 0))  # (2, H, W) complex
        return field.real.astype(np.float32)

    def point_displacement(self, x: float, y: float) -> np.ndarray:
        """F at pixel (x, y) (bilinear): float64 (2,) pixels, without computing the whole field."""
        coefficients = sample_spectrum(self.motion.spectrum, x, y)  # (K, 2)
        return (coefficients * (self.free.q + self.held_q)[:, None]).sum(axis=0).real

    def energy(self) -> float:
        """sum_k 0.5 |q_k'|^2 + 0.5 omega_k^2 |q_k|^2 of the rendered state (unit modal mass)."""
        q = self.free.q + self.held_q
        kinetic = 0.5 * np.sum(np.abs(self.free.velocity) ** 2)
        potential = 0.5 * np.sum(np.square(self.omega) * np.abs(q) ** 2)
        return float(kinetic + potential)

    def is_settled(self, tol: float = 0.01) -> bool:
        """True when nothing is held and no pixel can be displaced by more than tol pixels
        (or move faster than tol pixels per second): sum_k |S_k|max * |q_k| <= tol, same for q'."""
        if self.holding:
            return False
        displacement_bound = float(np.sum(self.peak_amplitude * np.abs(self.free.q)))
        speed_bound = float(np.sum(self.peak_amplitude * np.abs(self.free.velocity)))
        return displacement_bound <= tol and speed_bound <= tol
