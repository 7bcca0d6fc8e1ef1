"""The memory-lean U-Net inference (hybrid.operators.unet_lean): same outputs, less memory."""

import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

from hybrid.operators import unet as unet_module  # noqa: E402
from hybrid.operators.unet import UNet, UNetConfig  # noqa: E402
from hybrid.operators.unet_lean import supports_lean, unet_forward_lean  # noqa: E402


def _trained_like(cfg, seed=0):
    """A U-Net with non-trivial GroupNorm affine parameters (fresh ones are 1 and 0)."""
    torch.manual_seed(seed)
    net = UNet(cfg).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return net


@pytest.mark.parametrize("cfg,shape,rows", [
    (UNetConfig(in_channels=3, out_channels=2, channels=4, depth=3), (1, 3, 67, 45), 4),     # odd, padded
    (UNetConfig(in_channels=2, out_channels=1, channels=16, depth=2, coordinates=True), (2, 2, 33, 40), 6),
    (UNetConfig(in_channels=1, out_channels=1, channels=8, depth=1), (1, 1, 16, 16), 128),  # one strip
])
def test_lean_forward_equals_plain_forward(cfg, shape, rows):
    net = _trained_like(cfg)
    x = torch.randn(*shape)
    with torch.enable_grad():
        plain = net(x).detach()
    lean = unet_forward_lean(net, x, rows=rows)
    assert lean.shape == plain.shape
    assert torch.allclose(lean, plain, rtol=1e-5, atol=1e-5 * plain.abs().max().item())


@pytest.mark.parametrize("lean", [False, True])
def test_channels_last_inference_is_the_same_function(lean):
    """``cpu_layout`` (channels-last weights, every plane channels-last) on the plain and the lean path:
    the float64 NCHW pass's values (the lean output in channels-last layout)."""
    from hybrid.operators.unet import cpu_layout

    cfg = UNetConfig(in_channels=3, out_channels=2, channels=8, depth=3)
    net = _trained_like(cfg)
    x = torch.randn(1, 3, 75, 61)
    with torch.no_grad():
        ref = _trained_like(cfg).double()(x.double()).float()
        fast = cpu_layout(net)
        xc = x.contiguous(memory_format=torch.channels_last)
        out = unet_forward_lean(fast, xc, rows=8) if lean else fast(xc)
    if lean:  # the plain pass crops its padded output: a strided view either way
        assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert float((out - ref).norm() / ref.norm()) < 2e-5


def test_forward_takes_the_lean_path_only_for_large_inference_on_cpu(monkeypatch):
    net = _trained_like(UNetConfig(in_channels=1, out_channels=1, channels=4, depth=2))
    calls = []

    def spy(unet, x, rows=16):
        calls.append(tuple(x.shape))
        return unet_forward_lean(unet, x, rows)

    monkeypatch.setattr(unet_module, "unet_forward_lean", spy)
    monkeypatch.setattr(unet_module, "LEAN_MIN_PIXELS", 30 * 30)
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        a = net(x)
        net(x[..., :20, :20])                      # below the threshold: plain
    b = net(x).detach()                            # autograd on: plain (training is unchanged)
    assert calls == [(1, 1, 32, 32)]
    assert torch.allclose(a, b, atol=1e-5)


def test_non_standard_blocks_fall_back_to_the_plain_forward(monkeypatch):
    net = _trained_like(UNetConfig(in_channels=1, out_channels=1, channels=4, depth=2))
    net.dec[0][2] = torch.nn.Softmax(dim=1)      # not element by element: strips would change it
    assert not supports_lean(net)
    monkeypatch.setattr(unet_module, "LEAN_MIN_PIXELS", 1)
    x = torch.randn(1, 1, 24, 24)
    with torch.no_grad():
        a = net(x)
    assert torch.allclose(a, net(x).detach())


_PEAK = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from solvers.limits import release_memory, reset_peak_memory, resident_mb
    from hybrid.operators.helmholtz_net import HelmholtzNet, HelmholtzNetConfig
    import hybrid.operators.unet as U
    net = HelmholtzNet(HelmholtzNetConfig(channels=8, depth=4)).eval()
    if sys.argv[1] == "plain":
        U.LEAN_MIN_PIXELS = 10**12
    r, kh = torch.randn(1, 2, 1025, 1025), torch.rand(1, 1, 1025, 1025)
    with torch.inference_mode():
        net(r[..., :64, :64], kh[..., :64, :64])
    release_memory()
    if not reset_peak_memory():
        print("unsupported"); raise SystemExit
    base = resident_mb()
    with torch.inference_mode():
        net(r, kh)
    hwm = [int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
    print(hwm - base)
""")


def _forward_peak_mb(mode):
    out = subprocess.run([sys.executable, "-c", _PEAK, mode], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.split()[-1]
    if last == "unsupported":
        pytest.skip("/proc/self/clear_refs cannot reset the high-water mark here")
    return float(last)


def test_lean_forward_needs_well_under_the_plain_forwards_memory():
    """The Helmholtz network (8 channels, depth 4) at 1025^2: the plain pass peaks at ~90 planes of the
    grid, the lean one at ~43 (scripts/helmholtz_net_memory.py: 375 vs 176 MB; 1199 vs 507 at 2049^2)."""
    plain, lean = _forward_peak_mb("plain"), _forward_peak_mb("lean")
    assert lean < 0.65 * plain, (lean, plain)
