"""Build of the compiled core.

Each per-ISA file (ISA_FILES: the kernels in ext/kernels/, the GRU update, quantiser
and sampler in ext/engine/) is compiled with the flags of its own ISA, so one build runs
on any x86-64 CPU and ext/isa_dispatch.c's tables give every level its functions. The
float code is compiled with -ffp-contract=off (no FMA): the per-ISA float files do the
same IEEE operations per element, the rest is compiled once with baseline flags, so the
results are the same bits whatever level runs.
"""

import os
import platform

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNEL_DIR = "ext/kernels"
ENGINE_DIR = "ext/engine"
COMMON_FLAGS = ["-std=c99", "-O3", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Werror"]
X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")

# ISA level -> flags for its kernel file (ref is plain C).
KERNEL_FLAGS = {"ref": []}
if X86:
    KERNEL_FLAGS.update({
        "sse2": ["-msse2"],
        "avx2": ["-mavx2", "-mfma"],
        "avxvnni": ["-mavx2", "-mavxvnni"],
        "avx512": ["-mavx512f", "-mavx512bw", "-mavx512vl"],
        "avx512vnni": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni"],
    })

# VOCODER_EMULATE_ISA=1: a test build (tests/test_emulated_isa.py) in which the files of the
# levels this CPU may lack (AVX-VNNI, AVX-512, AVX-512 VNNI) are compiled for AVX2 against
# SIMDe's portable intrinsics (ext/simde_isa.h; Debian: libsimde-dev) and every level is
# offered, so each level's own code runs here and its bits can be checked. Never for use.
EMULATE_ISA = X86 and os.environ.get("VOCODER_EMULATE_ISA") == "1"
# -Wno-psabi: GCC notes that SIMDe's 512-bit vector types are passed differently without
# AVX-512; only these files' own static functions pass them, so the ABI never meets.
EMULATED_FLAGS = ["-mavx2", "-include", "ext/simde_isa.h", "-Wno-psabi"]


def isa_flags(flags):
    """The flags a per-ISA file is compiled with (EMULATED_FLAGS for an emulated level)."""
    if EMULATE_ISA and any(f.startswith(("-mavx512", "-mavxvnni")) for f in flags):
        return EMULATED_FLAGS
    return flags


# Every file with one level's version of an operation: path -> the flags of its ISA
# (ext/isa_dispatch.c puts each function in its levels' tables). The float ones get no
# FMA (-ffp-contract=off in COMMON_FLAGS; -mavx2 alone): their results must match across
# levels. Both extensions link all of them (the kernels module's test hooks compare
# every level's version with the plain C one).
ISA_FILES = {f"{KERNEL_DIR}/sparse_gemv_i8_{isa}.c": flags for isa, flags in KERNEL_FLAGS.items()}
ISA_FILES.update({f"{ENGINE_DIR}/{op}_ref.c": [] for op in ("gru_f32", "quantize", "sample", "excitation", "dense_f32")})
if X86:
    ISA_FILES.update({f"{ENGINE_DIR}/{op}_sse2.c": ["-msse2"] for op in ("gru_f32", "quantize", "excitation", "dense_f32")})
    for op in ("gru_f32", "quantize", "sample"):
        ISA_FILES[f"{ENGINE_DIR}/{op}_avx2.c"] = ["-mavx2"]
        ISA_FILES[f"{ENGINE_DIR}/{op}_avx512.c"] = ["-mavx512f"]

KERNEL_USERS = set()  # extensions that link the per-ISA kernel objects (cythonize copies Extensions, so track names)


class BuildWithIsaFlags(build_ext):
    """Compile each per-ISA file into its own object with its own flags, then link
    those objects into every extension that asks for them."""

    def build_extension(self, ext):
        if ext.name in KERNEL_USERS:
            objects = []
            for src, flags in ISA_FILES.items():
                objects += self.compiler.compile(
                    [src], output_dir=self.build_temp, include_dirs=["ext", KERNEL_DIR],
                    extra_postargs=COMMON_FLAGS + isa_flags(flags), depends=ext.depends)
            ext.extra_objects = list(ext.extra_objects or []) + objects
        super().build_extension(ext)


def extension(name, pyx, c_sources):
    ext = Extension(
        name,
        sources=[pyx] + c_sources,
        include_dirs=["ext", KERNEL_DIR, np.get_include()],
        extra_compile_args=COMMON_FLAGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
        + ([] if X86 else [("VK_NO_X86", "1")]) + ([("VK_EMULATED_ISA", "1")] if EMULATE_ISA else []),
        depends=[os.path.join(KERNEL_DIR, f) for f in os.listdir(KERNEL_DIR)]
        # every engine source and header: a per-ISA file or a shared body changed alone must rebuild
        + sorted(os.path.join(ENGINE_DIR, f) for f in os.listdir(ENGINE_DIR) if f.endswith((".c", ".h")))
        + ["ext/cpu_detect.h", "ext/isa.h", "ext/vk_paste.h", "ext/simde_isa.h", "vocoder/_kernels.pxd"],
    )
    KERNEL_USERS.add(name)
    return ext


SHARED_C = ["ext/cpu_detect.c", "ext/isa_dispatch.c"]
ENGINE_C = ["ext/plugin/wavernn_plugin.c"] + [f"{ENGINE_DIR}/{f}.c" for f in ("wavernn", "conditioning", "lanes", "stream", "teacher_force", "batch",
                                             "predict", "voice", "singer", "resample")] + ["ext/isa_dispatch.c"]

setup(
    ext_modules=cythonize(
        [extension("vocoder._kernels", "vocoder/_kernels.pyx", SHARED_C),
         extension("vocoder._engine", "vocoder/_engine.pyx", ENGINE_C),
         # the plugin host: loader of voice plugins (ext/plugin/vocoder_plugin.h) and the real-time mixer
         Extension("vocoder._plugin", sources=["vocoder/_plugin.pyx", "ext/plugin/host.c"], include_dirs=["ext"],
                   extra_compile_args=COMMON_FLAGS, libraries=["dl", "pthread"],
                   depends=["ext/plugin/vocoder_plugin.h", "ext/plugin/host.h"])],
        compiler_directives={"language_level": "3"},
    ),
    cmdclass={"build_ext": BuildWithIsaFlags},
    data_files=[("share/vocoder/presets", [os.path.join("presets", f) for f in sorted(os.listdir("presets")) if f.endswith(".safetensors")])]
    if os.path.isdir("presets") else [],
)
