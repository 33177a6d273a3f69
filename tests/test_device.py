"""Device choice and job accounting (the parts that run without a GPU)."""

import time

import pytest
import torch

from scaling_atlas.train.device import accounted, select_device


def test_usage_is_accounted_and_logged(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    lines = []
    with accounted(torch.device("cpu"), lines.append) as usage:
        time.sleep(0.05)
    assert usage["wall_seconds"] >= 0.05 and usage["gpu_hours"] == 0.0
    assert usage["cpu_core_hours"] > 0 and usage["peak_gpu_memory_bytes"] == 0
    assert usage["slurm_job_id"] == "4242" and usage["cuda_visible_devices"] == "3"
    assert "SLURM job 4242" in lines[0] and "GPU-hours" in lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_visible_gpu_names_the_allocation(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(RuntimeError, match=r"no CUDA device is visible \(CUDA_VISIBLE_DEVICES=''\)"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"
