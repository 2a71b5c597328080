"""The float reference: docs/model.md in plain numpy, the ideal network a preset describes.

The compiled engine computes the same function in int8 with int32 accumulation; this
module computes it with the dequantized weights (``int8 * scale``) and float activations
(float64 by default), one sample at a time in Python. It is slow and meant for tests,
for checking the engine, and as the readable statement of the math.

It also holds the sample <-> class mappings that training, the engine's tests and the
reference must share:

* dual head: 16-bit audio ``s`` (``-32768..32767``) split as ``u = s + 32768``,
  ``coarse = u >> 8``, ``fine = u & 255``; a byte ``v`` enters the network as
  ``(v - 127.5) / 127.5`` (:func:`audio_to_dual`, :func:`dual_to_audio`,
  :func:`byte_to_input`);
* mu-law head: ``Q = 2**bits`` classes, ``mu = Q - 1``; class ``k`` enters the network as
  ``2k/mu - 1`` (:func:`mulaw_encode`, :func:`mulaw_decode`, :func:`class_to_input`).
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- mappings

#: The "previous sample" before the first one: audio 0.
DUAL_START = (128, 0)


def audio_to_16bit(audio) -> np.ndarray:
    """Float audio in [-1, 1] to int64 16-bit values: ``floor(x * 32768 + 0.5)``, clamped.

    Out-of-range values clip to -32768 / 32767 and NaN maps to 0 (silence).
    """
    x = np.nan_to_num(np.asarray(audio, np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.floor(x * 32768.0 + 0.5), -32768, 32767).astype(np.int64)


def audio_to_dual(audio):
    """Float audio to ``(coarse, fine)`` byte classes (int64 arrays, values 0..255)."""
    u = audio_to_16bit(audio) + 32768
    return u >> 8, u & 255


def dual_to_audio(coarse, fine) -> np.ndarray:
    """``(coarse, fine)`` bytes to float32 audio ``(coarse*256 + fine - 32768) / 32768``."""
    s = np.asarray(coarse, np.int64) * 256 + np.asarray(fine, np.int64) - 32768
    return (s / 32768.0).astype(np.float32)


def byte_to_input(v) -> np.ndarray:
    """A byte class 0..255 as the network sees it: ``(v - 127.5) / 127.5`` in [-1, 1]."""
    return (np.asarray(v, np.float64) - 127.5) / 127.5


def class_to_input(k, n_classes: int) -> np.ndarray:
    """A mu-law class 0..Q-1 as the network sees it: ``2k/(Q-1) - 1`` in [-1, 1]."""
    return 2.0 * np.asarray(k, np.float64) / (n_classes - 1) - 1.0


def mulaw_encode(audio, bits: int) -> np.ndarray:
    """Float audio in [-1, 1] to mu-law classes 0..2**bits-1 (int64).

    ``y = sign(x) ln(1 + mu|x|) / ln(1 + mu)``, class ``floor((y + 1)/2 * mu + 0.5)``
    (round half up, as torchaudio does), ``mu = 2**bits - 1``. Out-of-range audio clips;
    NaN maps to 0.
    """
    mu = 2 ** int(bits) - 1
    x = np.clip(np.nan_to_num(np.asarray(audio, np.float64), nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.clip(np.floor((y + 1.0) / 2.0 * mu + 0.5), 0, mu).astype(np.int64)


def preemphasize(audio, alpha: float) -> np.ndarray:
    """``x[n] - alpha x[n-1]`` (with ``x[-1] = 0``), float64: the signal a preset with
    ``preemphasis = alpha`` models. Tilting the spectrum up before the 8-bit mu-law
    classes puts their white quantisation noise under the voice's falling spectrum
    once :func:`deemphasize` undoes the tilt (as LPCNet does); docs/model.md."""
    x = np.asarray(audio, np.float64)
    if not alpha:
        return x
    y = x.copy()
    y[1:] -= alpha * x[:-1]
    return y


def deemphasize(audio, alpha: float) -> np.ndarray:
    """The inverse of :func:`preemphasize`: ``y[n] = x[n] + alpha y[n-1]`` in float32,
    the engine's exact operations (one multiply, one add, no fused multiply-add)."""
    x = np.asarray(audio, np.float32)
    if not alpha:
        return x.copy()
    from scipy.signal import lfilter

    # direct form II transposed with b = [1], a = [1, -alpha]: y = x + (alpha * y_prev)
    return lfilter(np.array([1.0], np.float32), np.array([1.0, -alpha], np.float32), x).astype(np.float32)


def dc_block(audio, sample_rate: int, highpass_hz: float = 20.0) -> np.ndarray:
    """The DC blocker the engine runs after :func:`deemphasize`: ``z[n] = y[n] + (r z[n-1]
    - y[n-1])`` in float32, ``r = 1 - 2 pi 20 / sample_rate`` (a 20 Hz high-pass). The
    de-emphasis multiplies DC by ``1/(1-a)``, so without it a small bias of the sampled
    classes becomes rumble."""
    from scipy.signal import lfilter

    r = np.float32(1.0 - 2.0 * np.pi * float(np.float32(highpass_hz)) / sample_rate)
    # direct form II transposed, b = [1, -1], a = [1, -r]: z = y + ((-y_prev) - (-r z_prev))
    return lfilter(
        np.array([1.0, -1.0], np.float32), np.array([1.0, -r], np.float32), np.asarray(audio, np.float32)
    ).astype(np.float32)


def emphasis_out(audio, alpha: float, sample_rate: int, highpass_hz: float = 20.0) -> np.ndarray:
    """What the engine delivers from the network's samples: de-emphasised, DC-blocked and
    clamped to [-1, 1] when ``alpha > 0``; unchanged otherwise."""
    if not alpha:
        return np.asarray(audio, np.float32)
    return np.clip(dc_block(deemphasize(audio, alpha), sample_rate, highpass_hz), -1.0, 1.0)


def audio_to_classes(audio, bits: int, preemphasis: float = 0.0) -> np.ndarray:
    """Recorded audio to the mu-law classes a preset is trained on (pre-emphasised first
    when the preset says so)."""
    return mulaw_encode(preemphasize(audio, preemphasis), bits)


def mulaw_decode(classes, bits: int) -> np.ndarray:
    """Mu-law classes to float32 audio: ``y = 2k/mu - 1``, ``x = sign(y)((1+mu)^|y| - 1)/mu``."""
    mu = 2 ** int(bits) - 1
    y = class_to_input(classes, mu + 1)
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def sigmoid(x):
    # tanh form: exact identity, and no overflow warnings for large |x|.
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def normalise_features(features, feat_mean, feat_std) -> np.ndarray:
    """Step 1 of the conditioning: ``clip((f - mean)/std, -8, 8)``, NaN -> 0, +-inf -> +-8.

    Features are first rounded to float32 (what the engine receives), so a value too
    large for float32 behaves as infinity, as it does there.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        f = np.asarray(features, np.float32).astype(np.float64)
        z = (f - np.asarray(feat_mean, np.float64)) / np.asarray(feat_std, np.float64)
    z = np.nan_to_num(z, nan=0.0, posinf=8.0, neginf=-8.0)
    return np.clip(z, -8.0, 8.0)


# --------------------------------------------------------------------------- excitation


def excitation(features, hop: int, sample_rate: int) -> np.ndarray:
    """Per-sample excitation ``[frames * hop, 2]`` (pulse train, sine) of docs/model.md.

    Reads the raw ``f0`` (MIDI note) and ``voicing`` features, columns 0 and 1. Training
    uses this function, so the network learns exactly what the engine will feed it (the
    engine computes the same formula with its own polynomials; they agree to ~1e-7).
    """
    f = np.asarray(features, np.float32)
    if f.ndim != 2 or f.shape[1] < 2:
        raise ValueError(f"features must be [frames, >= 2] with f0 and voicing first, got shape {f.shape}")
    n = f.shape[0] * hop
    if n == 0:
        return np.zeros((0, 2), np.float32)
    with np.errstate(invalid="ignore"):
        m = np.clip(np.nan_to_num(f[:, 0].astype(np.float64), nan=60.0), 12.0, 120.0)
        v = np.clip(np.nan_to_num(f[:, 1].astype(np.float64), nan=0.0), 0.0, 1.0)
    inc = 440.0 * 2.0 ** ((m - 69.0) / 12.0) / sample_rate
    K = np.floor(0.5 / inc)
    v = np.where(K >= 1, v, 0.0)
    # Phase at each frame start, wrapped once per frame; inside the frame
    # phi = frac(p + k * inc). The engine does the same double operations.
    p = np.empty(f.shape[0])
    acc = 0.0
    for t in range(f.shape[0]):
        p[t] = acc
        acc = acc + hop * inc[t]
        acc = acc - np.floor(acc)
    phi = p[:, None] + np.arange(hop)[None, :] * inc[:, None]
    phi = (phi - np.floor(phi)).reshape(-1)
    Ks = np.repeat(K, hop)
    den = (2 * Ks + 1) * np.sin(np.pi * phi)
    with np.errstate(divide="ignore", invalid="ignore"):
        pulse = np.where(np.abs(np.sin(np.pi * phi)) < 1e-9, 1.0, np.sin((2 * Ks + 1) * np.pi * phi) / den)
    vs = np.repeat(v, hop)
    return np.stack([vs * pulse, vs * np.sin(2 * np.pi * phi)], axis=1).astype(np.float32)


# --------------------------------------------------------------------------- model


class PredictedSignal:
    """ext/engine/predict.h's per-sample prediction in numpy float32, in the same order
    (the per-frame coefficients come from the compiled routine): sample ``i`` is
    ``p + value(class)``, clamped to +-2.

    >>> ps = PredictedSignal(predictor, features, hop, n_classes)
    >>> for i in range(n): ps.input_classes(i); ps.push(i, cls[i])   # ps.s is the signal
    """

    def __init__(self, predictor, features, hop: int, n_classes: int):
        from .predict import class_thresholds, mulaw_table

        f = np.ascontiguousarray(features, np.float32)
        self.lpc, self.taps, self.lag = predictor.frames(f)
        self.hop, self.Q = hop, n_classes
        self.table, self.thr = mulaw_table(n_classes), class_thresholds(n_classes)
        n = f.shape[0] * hop
        self.s, self.r = np.zeros(n, np.float32), np.zeros(n, np.float32)
        self.prev_class = n_classes // 2
        self._stp = self._p = np.float32(0.0)

    def input_classes(self, i: int) -> tuple:
        """Predict sample ``i``; the network's inputs (class of s[i-1], of p[i], last class)."""
        f32, t = np.float32, min(i // self.hop, len(self.lag) - 1)
        stp = f32(0.0)
        for k in range(16):
            stp = f32(stp + f32(self.lpc[t, k] * (self.s[i - 1 - k] if i - 1 - k >= 0 else f32(0.0))))
        b, ltp = i - int(self.lag[t]), f32(0.0)
        for j in range(4):
            src = b + 1 - j
            ltp = f32(ltp + f32(self.taps[t, j] * (self.r[src] if src >= 0 else f32(0.0))))
        self._stp, self._p = stp, f32(stp + ltp)
        s_prev = self.s[i - 1] if i else f32(0.0)
        return (
            int(np.searchsorted(self.thr, s_prev, side="right")),
            int(np.searchsorted(self.thr, self._p, side="right")),
            self.prev_class,
        )

    def push(self, i: int, k: int) -> float:
        """Sample ``i`` is the prediction plus class ``k``'s value."""
        lim = np.float32(2.0)
        v = min(max(np.float32(self._p + self.table[k]), -lim), lim)
        self.s[i], self.r[i], self.prev_class = v, np.float32(v - self._stp), int(k)
        return float(v)


class ReferenceModel:
    """docs/model.md for one preset, in numpy (``dtype`` float64 by default).

    ``features`` everywhere is ``[frames, n_features]``; the audio covers
    ``frames * hop`` samples, sample ``i`` using frame ``i // hop``.
    """

    def __init__(self, preset, dtype=np.float64):
        self.preset = preset
        self.dtype = np.dtype(dtype)
        self.cfg = c = preset.config
        self.H, self.Hc = c["hidden"], c["hidden"] // 2
        self.B, self.F = c["subscale"], c["horizon"]
        self.hop, self.nf = c["hop"], c["n_features"]
        self.head = c["head"]
        self.E = c["excitation"]
        self.sr = c["sample_rate"]
        self.Q = preset.n_classes
        self.predictor = c.get("predictor", "none") != "none"
        t = {k: np.asarray(v, self.dtype) for k, v in preset.tensors.items()}
        self.t = t
        # Dequantize in float64 before casting, so the weights are as exact as the dtype allows.
        self.W = {
            m: (layer.packed.to_dense().astype(np.float64) * layer.scales.astype(np.float64)[:, None]).astype(
                self.dtype
            )
            for m, layer in preset.layers.items()
        }
        self.b = {m: np.asarray(layer.bias, self.dtype) for m, layer in preset.layers.items()}

    # ---- conditioning

    def _check_features(self, features) -> np.ndarray:
        f = np.asarray(features)
        if f.ndim != 2 or f.shape[1] != self.nf:
            raise ValueError(
                f"features must be [frames, {self.nf}] ({', '.join(self.cfg['feature_names'])}), got shape {f.shape}"
            )
        return f

    def conditioning(self, features) -> np.ndarray:
        """Per-frame conditioning ``cond``, ``[frames, 3H]`` (NaN/inf features are safe)."""
        f = self._check_features(features)
        frames = f.shape[0]
        c = self.cfg
        if frames == 0:
            return np.zeros((0, 3 * self.H), self.dtype)
        z = normalise_features(f, self.t["feat_mean"], self.t["feat_std"]).astype(self.dtype)
        # Window of frame t: z[t - ctx_before] .. z[t + lookahead], oldest first, clamped
        # to the first / last frame.
        offsets = np.arange(-c["ctx_before"], c["lookahead"] + 1)
        idx = np.clip(np.arange(frames)[:, None] + offsets[None, :], 0, frames - 1)
        x = z[idx].reshape(frames, -1)
        c1 = np.tanh(x @ self.t["cond1_w"].T + self.t["cond1_b"])
        return c1 @ self.t["cond2_w"].T + self.t["cond2_b"]

    # ---- pieces of a step

    def _gru(self, gx, gh, h):
        """GRU update for a slice of units; gx, gh are [3, n] (gates r, z, n)."""
        r = sigmoid(gx[0] + gh[0])
        u = sigmoid(gx[1] + gh[1])
        n = np.tanh(gx[2] + r * gh[2])
        return (1.0 - u) * n + u * h

    def _mlp(self, a, b, x, extra=0.0):
        """``Wb @ relu(Wa @ x + ba + extra) + bb`` for x of shape [..., n] (row vectors)."""
        hid = np.maximum(x @ self.W[a].T + self.b[a] + extra, 0.0)
        return hid @ self.W[b].T + self.b[b]

    def _exc_out(self, e, rows: slice):
        """The excitation's term in the first output layer, ``X[rows] @ e``."""
        if self.E == 0 or e is None:
            return 0.0
        return np.asarray(e, self.dtype) @ self.t["exc_out_w"][rows].T

    def logits_coarse(self, h_coarse, e=None):
        return self._mlp("O1", "O2", h_coarse, self._exc_out(e, slice(0, self.Hc)))

    def logits_fine(self, h_fine, e=None):
        return self._mlp("O3", "O4", h_fine, self._exc_out(e, slice(self.Hc, self.H)))

    def logits_mulaw(self, h, e=None):
        return self._mlp("O1", "O2", h, self._exc_out(e, slice(0, self.H)))

    def _start_input(self):
        """(in0, in1) of the 'previous sample' before the first: audio 0."""
        if self.head == "dual":
            return float(byte_to_input(DUAL_START[0])), float(byte_to_input(DUAL_START[1]))
        return float(class_to_input(mulaw_encode(0.0, self.cfg["mulaw_bits"]), self.Q)), 0.0

    # ---- teacher forcing

    def teacher_forced(self, features, audio) -> dict:
        """Logits the network predicts for each sample given the true past (B == 1 only).

        ``audio`` (float in [-1, 1], length ``frames * hop``) is first quantized to
        classes. Dual head: ``{"logits_c": [T, 256], "logits_f": [T, 256]}``, the fine
        logits also given the true current coarse byte; mu-law: ``{"logits": [T, Q]}``.
        With a predictor (docs/model.md, "Prediction") the classes are those of the
        remainder after the prediction from the true past, returned as ``"classes"``
        (what the engine's teacher forcing takes).
        """
        if self.B != 1:
            raise ValueError("teacher_forced supports subscale == 1 only")
        f = self._check_features(features)
        T = f.shape[0] * self.hop
        audio = np.asarray(audio, np.float64).reshape(-1)
        if audio.shape[0] != T:
            raise ValueError(f"audio must have frames * hop = {T} samples, got {audio.shape[0]}")
        audio = preemphasize(audio, self.cfg["preemphasis"])  # what the network models
        cond = self.conditioning(f)
        exc = excitation(f, self.hop, self.sr) if self.E else np.zeros((T, 0), np.float32)
        x = np.zeros((T, 3 + self.E), self.dtype)
        x[:, 3:] = exc
        s0, s1 = self._start_input()
        if self.head == "dual":
            c, fi = audio_to_dual(audio)
            x[:, 0] = np.concatenate([[s0], byte_to_input(c[:-1])])
            x[:, 1] = np.concatenate([[s1], byte_to_input(fi[:-1])])
            # The coarse rows ignore column 2 (the loader enforces in_w[coarse, 2] == 0),
            # so one full step with the true c_cur equals coarse-first-then-fine.
            x[:, 2] = byte_to_input(c)
        elif self.predictor:
            from .predict import for_preset

            run = for_preset(self.preset).run(
                np.ascontiguousarray(f, np.float32), self.hop, self.Q, target=audio.astype(np.float32)
            )
            for col, key in enumerate(("in_s", "in_p", "in_e")):
                x[:, col] = class_to_input(run[key], self.Q)
        else:
            k = mulaw_encode(audio, self.cfg["mulaw_bits"])
            x[:, 0] = np.concatenate([[s0], class_to_input(k[:-1], self.Q)])
        frame = np.arange(T) // self.hop
        gx_all = x @ self.t["in_w"].T + cond[frame] + self.t["sub_bias"][0]
        R, Rb = self.W["R"], self.b["R"]
        h = np.zeros(self.H, self.dtype)
        hs = np.empty((T, self.H), self.dtype)
        for i in range(T):
            gh = (R @ h + Rb).reshape(3, self.H)
            h = self._gru(gx_all[i].reshape(3, self.H), gh, h)
            hs[i] = h
        if self.head == "dual":
            return {
                "logits_c": self.logits_coarse(hs[:, : self.Hc], exc),
                "logits_f": self.logits_fine(hs[:, self.Hc :], exc),
            }
        out = {"logits": self.logits_mulaw(hs, exc)}
        if self.predictor:
            out["classes"] = run["target"]
        return out

    # ---- free running

    def _generate_predicted(self, f, cond, exc, sample):
        """Free running of a predictor preset (docs/model.md, "Prediction")."""
        from .predict import for_preset

        pred = PredictedSignal(for_preset(self.preset), f, self.hop, self.Q)
        N, H, Q = f.shape[0] * self.hop, self.H, self.Q
        in_w, R, Rb = self.t["in_w"], self.W["R"], self.b["R"]
        h = np.zeros(H, self.dtype)
        for i in range(N):
            x = np.zeros(3 + self.E, self.dtype)
            x[:3] = class_to_input(np.array(pred.input_classes(i)), Q)
            x[3:] = exc[i]
            gx = (in_w @ x + cond[i // self.hop] + self.t["sub_bias"][0]).reshape(3, H)
            h = self._gru(gx, (R @ h + Rb).reshape(3, H), h)
            pred.push(i, sample(self.logits_mulaw(h, exc[i])))
        return emphasis_out(pred.s, self.cfg["preemphasis"], self.sr, self.cfg["highpass_hz"])

    def generate(self, features, seed: int = 0, temperature: float | None = None) -> np.ndarray:
        """Free-running generation: float32 audio of ``frames * hop`` samples.

        Sampling is Gumbel-max, ``argmax(logits + T * g)``, with ``g`` from
        ``np.random.default_rng(seed).gumbel`` (the engine has its own RNG, so only
        ``T = 0`` is comparable sample for sample). ``temperature`` defaults to the
        preset's. Handles subscale (B > 1) too, per docs/model.md; a context sample past
        the end of the audio is taken as 0.
        """
        f = self._check_features(features)
        T = self.preset.temperature if temperature is None else float(temperature)
        if not np.isfinite(T) or T < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        N = f.shape[0] * self.hop
        audio = np.zeros(N, np.float32)
        if N == 0:
            return audio
        cond = self.conditioning(f)
        exc = excitation(f, self.hop, self.sr) if self.E else np.zeros((N, 0), np.float32)
        rng = np.random.default_rng(seed)
        B, F, H, Hc = self.B, self.F, self.H, self.Hc
        in_w, R, Rb = self.t["in_w"], self.W["R"], self.b["R"]
        sub_bias = self.t["sub_bias"]
        bits = self.cfg["mulaw_bits"]

        def sample(logits):
            return int(np.argmax(logits + T * rng.gumbel(size=logits.shape)))

        if self.predictor:
            return self._generate_predicted(f, cond, exc, sample)

        lengths = [max(0, -(-(N - b) // B)) for b in range(B)]  # positions of sub-tensor b
        steps = max(lengths[b] + b * F for b in range(B) if lengths[b] > 0)
        h = np.zeros((B, H), self.dtype)
        s0, s1 = self._start_input()
        prev = [(s0, s1) for _ in range(B)]  # network inputs of each sub-tensor's previous sample
        for t in range(steps):
            for b in range(B):
                j = t - b * F
                if not 0 <= j < lengths[b]:
                    continue
                i = j * B + b
                x = np.zeros(3 + F + self.E, self.dtype)
                x[0], x[1] = prev[b]
                e = exc[i]
                x[3 + F :] = e
                if b > 0:
                    for k in range(1, F + 1):
                        g = (j + k - 1) * B + b - 1
                        x[2 + k] = audio[g] if g < N else 0.0
                gx_base = cond[i // self.hop] + sub_bias[b]
                gh = (R @ h[b] + Rb).reshape(3, H)
                if self.head == "dual":
                    # Coarse half first; its rows do not see x[2] (c_cur), still 0 here.
                    gx = (in_w @ x + gx_base).reshape(3, H)
                    hc = self._gru(gx[:, :Hc], gh[:, :Hc], h[b, :Hc])
                    c = sample(self.logits_coarse(hc, e))
                    x[2] = byte_to_input(c)
                    gx = (in_w @ x + gx_base).reshape(3, H)
                    hf = self._gru(gx[:, Hc:], gh[:, Hc:], h[b, Hc:])
                    fi = sample(self.logits_fine(hf, e))
                    h[b] = np.concatenate([hc, hf])
                    audio[i] = dual_to_audio(c, fi)
                    prev[b] = (float(byte_to_input(c)), float(byte_to_input(fi)))
                else:
                    gx = (in_w @ x + gx_base).reshape(3, H)
                    h[b] = self._gru(gx, gh, h[b])
                    k = sample(self.logits_mulaw(h[b], e))
                    audio[i] = mulaw_decode(k, bits)
                    prev[b] = (float(class_to_input(k, self.Q)), 0.0)
        # the engine de-emphasises and clamps what it delivers; so does the reference
        return emphasis_out(audio, self.cfg["preemphasis"], self.sr, self.cfg["highpass_hz"])
