"""The preset file format: what a ``<name>.safetensors`` voice holds, its names and shapes.

A preset ``<name>.safetensors`` holds

* the network of ``docs/model.md`` as tensors: dense float32 tensors (``feat_mean``,
  ``feat_std``, ``cond1_w``, ``cond1_b``, ``cond2_w``, ``cond2_b``, ``in_w``,
  ``sub_bias``, ``exc_out_w``) and block-sparse int8 matrices (``R``, ``O1`` .. ``O4``) already in the
  kernels' packed format (:mod:`vocoder.engine.blocksparse`), each as five tensors
  ``<M>.row_ptr``, ``<M>.col_idx``, ``<M>.blocks``, ``<M>.scales``, ``<M>.bias``;
* a JSON config under the safetensors metadata key ``"vocoder"``: the hyperparameters
  (which fix every tensor's shape), the feature names, and name / license / version.

The config keys (all required; :func:`load_preset` rejects missing, unknown, mistyped
and out-of-range ones):

=================  =========================================================
format_version     int, 4 (versions 1 to 3, made before the excitation, the
                   pre-emphasis and the predictor, still load and sound the same)
name               non-empty str; ``license``, ``version``, ``description``: str
sample_rate        int 8000..48000 (Hz)
hop                int 1..4096, samples per feature frame
n_features         int 1..512; ``feature_names``: that many unique str
hidden             H, even int 16..2048 (GRU units)
head               ``"dual"`` (coarse + fine bytes) or ``"mulaw"``
mulaw_bits         int 8..10 (required for both heads; used by ``mulaw``)
subscale           B, int 1..16; ``horizon``: F, 0 if B == 1 else 1..64
ctx_before         int 0..8, ``lookahead`` int 0..8: frames the conditioning sees
cond_hidden        int 1..4096, units of the conditioning network
excitation         E, int 0 or 2: per-sample pulse and sine at the pitch of feature
                   ``f0`` (then features 0, 1 must be named ``f0``, ``voicing``);
                   absent in version 1 files (read as 0)
temperature        float >= 0, default sampling temperature
preemphasis        float 0..0.99: the network models ``x[n] - a x[n-1]`` and the
                   engine de-emphasises its output (0: plain audio; absent in
                   version 1 and 2 files, read as 0)
predictor          ``"none"`` or ``"lpc+pitch"``: the network models the remainder
                   after the prediction of ``ext/engine/predict.h`` (mulaw head,
                   subscale 1, features ``f0``, ``voicing``, then envelope bands)
ltp_gain           float 0..0.99, the pitch predictor's gain at voicing 1
temperature_unvoiced  float >= 0: sampling temperature of unvoiced frames
                   (``temperature`` is that of voiced ones; linear between)
highpass_hz        float 0..200: corner of the DC blocker after the de-emphasis
                   (version 4 keys; older files read none, 0, ``temperature``, 20)
training, singer   JSON objects, free-form (provenance; front-end data)
=================  =========================================================

Safety: a preset may come from anywhere, so :func:`load_preset` trusts nothing in the
file. It never executes code (safetensors holds only raw arrays; no pickle), bounds the
memory it reads, derives every shape from the config instead of from the file, and
checks every index a kernel will follow (:func:`vocoder.engine.blocksparse.validate_packed`).
Any problem becomes a :class:`PresetError` whose message names the file and the field.
A :class:`Preset` you hold is therefore valid, and its arrays are read-only so it stays
valid.

Making presets: training export calls :func:`preset_from_float` with float matrices;
:func:`vocoder.testing.random_preset` builds a random (untrained but numerically sane)
network for tests and benchmarks. :func:`save_preset` writes atomically.

Finding presets: a name is looked up in the directories of ``VOCODER_PRESET_PATH``
(separated by ``os.pathsep``), then the repository's ``presets/``, then
``<sys.prefix>/share/vocoder/presets``; see :func:`preset_search_path`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..blocksparse import PackedBlocks

FORMAT_VERSION = 4
SUPPORTED_FORMAT_VERSIONS = (1, 2, 3, 4)
#: What the network's remainder is predicted by (docs/model.md, "Prediction").
PREDICTORS = ("none", "lpc+pitch")
METADATA_KEY = "vocoder"
SUFFIX = ".safetensors"

DENSE_NAMES = ("feat_mean", "feat_std", "cond1_w", "cond1_b", "cond2_w", "cond2_b", "in_w", "sub_bias", "exc_out_w")
PACKED_FIELDS = ("row_ptr", "col_idx", "blocks", "scales", "bias")

# Every config key; check_config holds the rules (summarised in the module docstring).
# fmt: off
CONFIG_KEYS = (
    "format_version", "name", "license", "version", "description",
    "sample_rate", "hop", "n_features", "feature_names",
    "hidden", "head", "mulaw_bits", "subscale", "horizon",
    "ctx_before", "lookahead", "cond_hidden", "excitation", "temperature", "preemphasis",
    "predictor", "ltp_gain", "temperature_unvoiced", "highpass_hz",
    "training", "singer",
)
# fmt: on
#: Excitation channel counts the network supports (docs/model.md).
EXCITATION_CHANNELS = (0, 2)
META_KEYS = ("name", "license", "version", "description", "training", "format_version")


class PresetError(ValueError):
    """A preset is missing, unreadable or invalid. The message names the file and field."""


def preset_error(where: str, field: str | None, msg: str) -> PresetError:
    return PresetError(f"{where}: {field}: {msg}" if field else f"{where}: {msg}")


@dataclass(frozen=True)
class SparseLayer:
    """One block-sparse int8 matrix with per-row float scales and a float bias.

    The matrix computes ``y = (int8 @ x) * scales + bias``; :meth:`dense_float` gives the
    float matrix ``int8 * scales[:, None]`` the float reference uses.
    """

    packed: PackedBlocks
    scales: np.ndarray  # float32 [rows], finite, > 0
    bias: np.ndarray  # float32 [rows], finite

    @property
    def rows(self) -> int:
        return self.packed.rows

    @property
    def cols(self) -> int:
        return self.packed.cols

    @property
    def density(self) -> float:
        """Fraction of the 16x4 blocks that are stored."""
        return self.packed.nnz_blocks / (self.packed.row_blocks * self.packed.col_blocks)

    def dense_float(self) -> np.ndarray:
        """The dequantized matrix, float32 ``[rows, cols]``."""
        return self.packed.to_dense().astype(np.float32) * self.scales[:, None]


# --------------------------------------------------------------------------- shapes


def expected_dense_shapes(config: dict) -> dict:
    """Shape of every dense float32 tensor for a (validated) config."""
    H, nf, B = config["hidden"], config["n_features"], config["subscale"]
    K = config["ctx_before"] + 1 + config["lookahead"]
    ch = config["cond_hidden"]
    return {
        "feat_mean": (nf,),
        "feat_std": (nf,),
        "cond1_w": (ch, K * nf),
        "cond1_b": (ch,),
        "cond2_w": (3 * H, ch),
        "cond2_b": (3 * H,),
        "in_w": (3 * H, 3 + config["horizon"] + config["excitation"]),
        "sub_bias": (B, 3 * H),
        "exc_out_w": (H, config["excitation"]),
    }


def expected_matrix_shapes(config: dict) -> dict:
    """``(rows, cols)`` of every block-sparse matrix for a (validated) config."""
    H = config["hidden"]
    if config["head"] == "dual":
        Hc = H // 2
        return {"R": (3 * H, H), "O1": (Hc, Hc), "O2": (256, Hc), "O3": (Hc, Hc), "O4": (256, Hc)}
    Q = 2 ** config["mulaw_bits"]
    return {"R": (3 * H, H), "O1": (H, H), "O2": (Q, H)}


def flatten_parts(tensors: dict, layers: dict) -> dict:
    flat = dict(tensors)
    for m, layer in layers.items():
        flat[f"{m}.row_ptr"] = layer.packed.row_ptr
        flat[f"{m}.col_idx"] = layer.packed.col_idx
        flat[f"{m}.blocks"] = layer.packed.blocks
        flat[f"{m}.scales"] = layer.scales
        flat[f"{m}.bias"] = layer.bias
    return flat


def default_feature_names(n: int) -> list:
    """``f0``, ``voicing``, then ``env0``, ``env1``, ... up to ``n`` names."""
    base = ["f0", "voicing"]
    return base[:n] + [f"env{i}" for i in range(max(0, n - len(base)))]
