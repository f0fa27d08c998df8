"""The machine fingerprint: parsed from /proc/cpuinfo, read once per process, summarised on one line."""

from __future__ import annotations

from cowbench.fingerprint import SIMD_FLAGS, _cpuinfo, fingerprint_summary, machine_fingerprint

CPUINFO = """processor\t: 0
model name\t: Example CPU @ 2.0GHz
flags\t\t: fpu sse2 sse4_2 avx avx2 fma avx512f avx512bw
processor\t: 1
model name\t: Example CPU @ 2.0GHz
flags\t\t: fpu sse2
"""


def test_cpuinfo_reads_the_model_and_the_simd_flags_that_matter(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    model, flags = _cpuinfo(str(path))
    assert model == "Example CPU @ 2.0GHz"
    assert flags == ["sse4_2", "avx", "avx2", "fma", "avx512f"]  # in SIMD_FLAGS order, extra flags dropped
    assert _cpuinfo(str(tmp_path / "missing")) == (None, [])


def test_fingerprint_names_the_builds_and_settings_and_is_a_copy():
    fp = machine_fingerprint()
    assert set(fp) >= {"cpu", "simd", "torch", "blas", "env"}
    assert set(fp["simd"]) <= set(SIMD_FLAGS)
    assert fp["torch"]["version"] and fp["torch"]["cpu_capability"]
    assert fp["env"]["MKL_CBWR"] == "COMPATIBLE"  # set by importing cowbench unless the user chose otherwise
    fp["cpu"] = "changed"
    assert machine_fingerprint()["cpu"] != "changed"


def test_summary_is_one_line_naming_cpu_torch_and_settings():
    line = fingerprint_summary()
    assert "\n" not in line and "torch " in line and "MKL_CBWR=" in line
    fake = {"cpu": "Example CPU", "machine": "x86_64", "simd": ["avx2"], "torch": {"version": "9.9",
            "blas": "Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 1", "cpu_capability": "DEFAULT"},
            "blas": [{"internal_api": "openblas", "version": "0.3", "architecture": "Haswell"}],
            "env": {"MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": None}}
    assert fingerprint_summary(fake) == ("Example CPU (x86_64) · avx2 · torch 9.9 (MKL 2024.2, DEFAULT) · "
                                         "numpy/scipy BLAS openblas 0.3 Haswell · MKL_CBWR=COMPATIBLE")


def test_provenance_carries_the_fingerprint():
    from cowbench.jobs import provenance

    assert provenance()["fingerprint"] == machine_fingerprint()
