"""nms and RoIAlign as mmcv 2.1.0 computes them, for the stand-in ``mmcv._ext`` (:mod:`panbench.ops.ext`), and the
ops a training step reaches on CUDA: CPU tensors through the C extension ``panbench.ops._cpu`` (mmcv's CPU code
ported), bit-identical to compiled mmcv's CPU ops; CUDA tensors through torchvision's kernels, other devices' through
mmcv's CPU float operations in PyTorch (docs/ops.md, "What runs where").  Every path sorts scores as mmcv does."""

from __future__ import annotations

from typing import Any

from panbench.errors import PanbenchError
from panbench.pq.extensions import load_extension

_cpu = load_extension("panbench.ops._cpu")
COMPILED_FIX = "compiled mmcv (PANBENCH_MMCV=compiled make setup, docs/setup.md)"  # how to get mmcv's own ops
ROI_CHUNK = 128  # RoIs gathered at once by roi_align_torch (bounds its temporary memory)
NEGATIVE_ROI = "roi_align: an RoI has a negative width or height with aligned=True (mmcv refuses it too)"


def _torchvision_serves(t: Any) -> bool:
    """Whether torchvision's kernels serve tensor ``t`` (CUDA tensors; the torchvision tier's tests patch it)."""
    return bool(t.is_cuda)


def _f32(x: float) -> float:
    """``x`` rounded to float32, as mmcv's bindings take ``iou_threshold`` and ``spatial_scale`` (C float)."""
    import numpy as np

    return float(np.float32(x))


def nms(boxes: Any, scores: Any, iou_threshold: float, offset: int) -> Any:
    """mmcv's ``ext_module.nms``: int64 indices of the kept boxes, by descending score."""
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    if offset == 0 and _torchvision_serves(boxes):
        return nms_torchvision(boxes, scores, iou_threshold)
    if boxes.device.type == "cpu" and boxes.dtype != torch.float32:
        raise RuntimeError(f"expected scalar type Float but found {boxes.dtype}: nms on the CPU takes float32 boxes "
                           "(as mmcv's nms_cpu)")
    if boxes.device.type == "cpu":
        return nms_c(boxes, scores, iou_threshold, offset)
    return nms_torch(boxes, scores, iou_threshold, offset)


def nms_c(boxes: Any, scores: Any, iou_threshold: float, offset: int) -> Any:
    """mmcv's ``nms_cpu`` with its suppression loop in C (CPU float32 tensors)."""
    import numpy as np
    import torch

    order = scores.sort(0, descending=True)[1]
    select = np.ones(boxes.shape[0], np.uint8)
    _cpu.nms(boxes.detach().contiguous().numpy(), order.numpy(), select, float(iou_threshold), int(offset))
    return order[torch.from_numpy(select.view(np.bool_))]


def nms_torch(boxes: Any, scores: Any, iou_threshold: float, offset: int) -> Any:
    """mmcv's ``nms_cpu`` with PyTorch tensors (any device): the same float32 operations in the same order."""
    import torch

    order = scores.sort(0, descending=True)[1]
    b = boxes.detach()[order]
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    thr = _f32(iou_threshold)
    n = b.shape[0]
    select = torch.ones(n, dtype=torch.bool, device=b.device)
    for i in range(n - 1):
        if not bool(select[i]):
            continue
        xx1, yy1 = torch.maximum(x1[i], x1[i + 1:]), torch.maximum(y1[i], y1[i + 1:])
        xx2, yy2 = torch.minimum(x2[i], x2[i + 1:]), torch.minimum(y2[i], y2[i + 1:])
        w, h = (xx2 - xx1 + offset).clamp_min(0), (yy2 - yy1 + offset).clamp_min(0)
        inter = w * h
        ovr = inter / (areas[i] + areas[i + 1:] - inter)
        select[i + 1:] &= ~(ovr > thr)
    return order[select]


def nms_torchvision(boxes: Any, scores: Any, iou_threshold: float) -> Any:
    """``torchvision.ops.nms`` (offset 0) visiting boxes in mmcv's order (its stable sort keeps it), the threshold
    rounded to float32 as mmcv's binding takes it (an IoU of exactly 0.3f is above 0.3 but not above 0.3f)."""
    import torchvision

    order = scores.sort(0, descending=True)[1]
    keep = torchvision.ops.nms(boxes[order], scores[order].to(boxes.dtype), _f32(iou_threshold))
    return order[keep]


def roi_align_forward(input: Any, rois: Any, output: Any, argmax_y: Any, argmax_x: Any, aligned_height: int,
                      aligned_width: int, spatial_scale: float, sampling_ratio: int, pool_mode: int,
                      aligned: bool) -> None:
    """mmcv's ``ext_module.roi_align_forward``: writes ``output`` (and, for max pooling, ``argmax_y/x``) in place."""
    import torch

    if rois.shape[0] == 0:
        return
    if pool_mode == 1 and _torchvision_serves(input):
        roi_align_torchvision(input, rois, output, aligned_height, aligned_width, spatial_scale, sampling_ratio,
                              aligned)
        return
    if input.device.type == "cpu" and input.dtype not in (torch.float32, torch.float64):
        raise PanbenchError(f"mmcv op roi_align_forward: {input.dtype} input on the CPU is not in panbench's ops "
                            f"(float32, float64); run it in float32 (panbench's --amp does) or install {COMPILED_FIX}")
    if input.device.type == "cpu":
        roi_align_c(input, rois, output, argmax_y, argmax_x, aligned_height, aligned_width, spatial_scale,
                    sampling_ratio, pool_mode, aligned)
        return
    out, ay, ax = roi_align_torch(input, rois, aligned_height, aligned_width, spatial_scale, sampling_ratio,
                                  pool_mode, aligned)
    output.copy_(out)
    if pool_mode == 0:
        argmax_y.copy_(ay)
        argmax_x.copy_(ax)


def roi_align_torchvision(input: Any, rois: Any, output: Any, aligned_height: int, aligned_width: int,
                          spatial_scale: float, sampling_ratio: int, aligned: bool) -> None:
    """``torchvision.ops.roi_align`` (average pooling) into ``output``, the scale rounded to float32 as mmcv's."""
    import torchvision

    output.copy_(torchvision.ops.roi_align(input, rois.to(input.dtype), (aligned_height, aligned_width),
                                           _f32(spatial_scale), sampling_ratio, bool(aligned)))


def _writable(t: Any) -> tuple[Any, Any]:
    """A numpy view of tensor ``t`` to write into, and the tensor to copy back from (None: the view is ``t``)."""
    if t.is_contiguous():
        return t.detach().numpy(), None
    tmp = t.detach().contiguous()
    return tmp.numpy(), tmp


def roi_align_c(input: Any, rois: Any, output: Any, argmax_y: Any, argmax_x: Any, aligned_height: int,
                aligned_width: int, spatial_scale: float, sampling_ratio: int, pool_mode: int, aligned: bool) -> None:
    """mmcv's ``ROIAlignForward`` in C (CPU, float32 or float64)."""
    import torch

    kind = "f" if input.dtype == torch.float32 else "d"
    x, r = input.detach().contiguous(), rois.detach().to(input.dtype).contiguous()
    batch = r[:, 0].to(torch.int64)  # (int) in C: truncation
    if int(batch.min()) < 0 or int(batch.max()) >= x.shape[0]:
        raise IndexError(f"roi_align: an RoI's image index is outside 0..{x.shape[0] - 1}")
    out, out_t = _writable(output)
    unused = (bytearray(), None)  # average pooling writes no argmax
    (ay, ay_t), (ax, ax_t) = (_writable(argmax_y), _writable(argmax_x)) if pool_mode == 0 else (unused, unused)
    ok = _cpu.roi_align(kind, x.numpy(), r.numpy(), out, ay, ax, x.shape[1], x.shape[2], x.shape[3],
                        int(aligned_height), int(aligned_width), float(spatial_scale), int(sampling_ratio),
                        int(pool_mode), bool(aligned))
    for dst, tmp in ((output, out_t), (argmax_y, ay_t), (argmax_x, ax_t)):
        if tmp is not None:
            dst.copy_(tmp)
    if not ok:
        raise RuntimeError(NEGATIVE_ROI)


def roi_align_torch(input: Any, rois: Any, aligned_height: int, aligned_width: int, spatial_scale: float,
                    sampling_ratio: int, pool_mode: int, aligned: bool) -> tuple[Any, Any, Any]:
    """mmcv's ``ROIAlignForward`` with PyTorch tensors (any device), ``(output, argmax_y, argmax_x)``: the C loop's
    float operations in its order, RoIs taken in groups with the same sampling grid."""
    import torch

    dt, dev = input.dtype, input.device
    n_img, C, H, W = input.shape
    K, ph_n, pw_n = rois.shape[0], int(aligned_height), int(aligned_width)
    out = torch.zeros((K, ph_n, pw_n, C), dtype=dt, device=dev)
    amy, amx = (torch.zeros_like(out), torch.zeros_like(out)) if pool_mode == 0 else (None, None)
    # one row per pixel; kept in autograd's graph where grad mode is on and ``input`` requires grad (roi_align_grad)
    feat = input.permute(0, 2, 3, 1).reshape(n_img * H * W, C)
    batch, start_h, start_w, bin_h, bin_w = _roi_bins(rois.detach().to(dt), spatial_scale, aligned, ph_n, pw_n)
    if sampling_ratio > 0:  # the number of samples per bin along y and x of each RoI
        pairs = torch.full((bin_h.shape[0], 2), int(sampling_ratio), dtype=torch.int64, device=bin_h.device)
    else:  # ceilf(roi_height / pooled_height): the quotient rounded to float32, then ceil
        pairs = torch.stack([bin_h.to(torch.float32).ceil(), bin_w.to(torch.float32).ceil()], 1).to(torch.int64)
    for gh, gw in torch.unique(pairs, dim=0).tolist():
        members = torch.nonzero((pairs[:, 0] == gh) & (pairs[:, 1] == gw)).flatten()
        for chunk in members.split(ROI_CHUNK):
            boxes = start_h[chunk, None], start_w[chunk, None], bin_h[chunk, None], bin_w[chunk, None]
            base = (batch[chunk] * (H * W))[:, None, None]
            pooled, my, mx = _pool_rois(feat, base, boxes, (gh, gw), (ph_n, pw_n), (H, W), pool_mode)
            out[chunk] = pooled
            if amy is not None and amx is not None:
                amy[chunk], amx[chunk] = my, mx
    perm = (0, 3, 1, 2)
    return (out.permute(perm).contiguous(), amy.permute(perm).contiguous() if amy is not None else None,
            amx.permute(perm).contiguous() if amx is not None else None)


def _roi_bins(r: Any, spatial_scale: float, aligned: bool, ph_n: int, pw_n: int) -> tuple[Any, Any, Any, Any, Any]:
    """``(image index, start_h, start_w, bin_h, bin_w)`` of each RoI row ``(b, x1, y1, x2, y2)`` of ``r``."""
    import torch

    scale, off = _f32(spatial_scale), (0.5 if aligned else 0.0)
    batch = r[:, 0].to(torch.int64)
    start_w, start_h = r[:, 1] * scale - off, r[:, 2] * scale - off
    end_w, end_h = r[:, 3] * scale - off, r[:, 4] * scale - off
    roi_w, roi_h = end_w - start_w, end_h - start_h
    if aligned and not bool(((roi_w >= 0) & (roi_h >= 0)).all()):
        raise RuntimeError(NEGATIVE_ROI)
    if not aligned:
        one = torch.ones((), dtype=r.dtype, device=r.device)
        roi_w, roi_h = torch.where(roi_w < 1.0, one, roi_w), torch.where(roi_h < 1.0, one, roi_h)
    return batch, start_h, start_w, roi_h / ph_n, roi_w / pw_n


def _pool_rois(feat: Any, base: Any, boxes: tuple[Any, Any, Any, Any], grid: tuple[int, int],
               pooled: tuple[int, int], hw: tuple[int, int], pool_mode: int) -> tuple[Any, Any, Any]:
    """One chunk of RoIs with the same sampling grid: ``(max, argmax_y, argmax_x)`` for max pooling
    (``pool_mode`` 0), else ``(mean, None, None)``, each ``(R, ph, pw, C)``."""
    import torch

    (sh, sw, bh, bw), (gh, gw), (ph_n, pw_n), (H, W) = boxes, grid, pooled, hw
    dt, dev = feat.dtype, feat.device
    ph_i, pw_i = (torch.arange(n, dtype=dt, device=dev) for n in (ph_n, pw_n))
    acc = torch.zeros((sh.shape[0], ph_n, pw_n, feat.shape[1]), dtype=dt, device=dev)
    maxval = my = mx = acc
    if pool_mode == 0:
        maxval, my, mx = torch.full_like(acc, -10000.0), torch.full_like(acc, -1.0), torch.full_like(acc, -1.0)
    for iy in range(gh):
        yy = sh + ph_i * bh + (iy + 0.5) * bh / gh  # (R, ph)
        for ix in range(gw):
            xx = sw + pw_i * bw + (ix + 0.5) * bw / gw  # (R, pw)
            val = _bilinear(feat, base, yy[:, :, None], xx[:, None, :], H, W)
            if pool_mode == 0:
                upd = val > maxval
                maxval = torch.where(upd, val, maxval)
                my = torch.where(upd, yy[:, :, None, None], my)
                mx = torch.where(upd, xx[:, None, :, None], mx)
            else:
                acc = acc + val
    if pool_mode == 0:
        return maxval, my, mx
    return acc / float(max(gh * gw, 1)), None, None


def _bilinear(feat: Any, base: Any, y: Any, x: Any, H: int, W: int) -> Any:
    """The sample at (y, x) of each RoI's image, per channel, with mmcv's bilinear weights and positions: ``y`` is
    (R, ph, 1), ``x`` (R, 1, pw); returns (R, ph, pw, C)."""
    import torch

    y, x = torch.broadcast_tensors(y, x)
    empty = (y < -1.0) | (y > H) | (x < -1.0) | (x > W)
    y, x = (torch.where(v <= 0, torch.zeros_like(v), v) for v in (y, x))
    y_low = torch.where(empty, 0, y.to(torch.int64).clamp(max=H - 1))
    x_low = torch.where(empty, 0, x.to(torch.int64).clamp(max=W - 1))
    top_y, top_x = y_low >= H - 1, x_low >= W - 1
    y, x = torch.where(top_y, y_low.to(y.dtype), y), torch.where(top_x, x_low.to(x.dtype), x)
    y_high, x_high = torch.where(top_y, y_low, y_low + 1), torch.where(top_x, x_low, x_low + 1)
    ly, lx = y - y_low.to(y.dtype), x - x_low.to(x.dtype)
    hy, hx = 1.0 - ly, 1.0 - lx
    zero = torch.zeros((), dtype=y.dtype, device=y.device)
    w1, w2, w3, w4 = (torch.where(empty, zero, a * b)[..., None] for a, b in ((hy, hx), (hy, lx), (ly, hx), (ly, lx)))
    y_high, x_high = torch.where(empty, 0, y_high), torch.where(empty, 0, x_high)
    v1, v2, v3, v4 = (feat[base + a * W + b] for a, b in ((y_low, x_low), (y_low, x_high), (y_high, x_low),
                                                          (y_high, x_high)))
    return w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4


FLT_MIN = 1.1754943508222875e-38  # C's FLT_MIN, the floor mmcv's focal-loss kernels put under each log


def sigmoid_focal_loss(input: Any, target: Any, weight: Any, gamma: float, alpha: float, derivative: bool) -> Any:
    """mmcv's ``sigmoid_focal_loss_forward`` (``derivative`` False: each element's loss) or ``_backward`` (True: its
    derivative by ``input``), element for element as mmcv's CUDA kernel writes them, on any device; a background row
    (``target`` = ``num_classes``), for which mmcv's kernel would read past the end of ``weight``, stays unweighted."""
    import torch

    p = 1.0 / (1.0 + torch.exp(-input))
    q = 1.0 - p
    log_p, log_q = torch.log(p.clamp_min(FLT_MIN)), torch.log(q.clamp_min(FLT_MIN))
    if derivative:
        term_p, term_n = q.pow(gamma) * (q - gamma * p * log_p), p.pow(gamma) * (gamma * q * log_q - p)
    else:
        term_p, term_n = q.pow(gamma) * log_p, p.pow(gamma) * log_q
    classes = torch.arange(input.shape[1], device=input.device)
    out = torch.where(target[:, None] == classes[None, :], -alpha * term_p, -(1.0 - alpha) * term_n)
    if weight.numel():
        n_cls = input.shape[1]
        out = out * torch.where(target < n_cls, weight[target.clamp(max=n_cls - 1)], 1.0)[:, None]
    return out


def ms_deform_attn_grads(value: Any, spatial_shapes: Any, sampling_locations: Any, attention_weights: Any,
                         grad_output: Any) -> tuple[Any, Any, Any]:
    """The gradients of mmcv's multi-scale deformable attention by ``value``, ``sampling_locations`` and
    ``attention_weights``: autograd through mmcv's own PyTorch function."""
    import torch
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

    with torch.enable_grad():
        inputs = [t.detach().requires_grad_() for t in (value, sampling_locations, attention_weights)]
        out = multi_scale_deformable_attn_pytorch(inputs[0], spatial_shapes, inputs[1], inputs[2])
        grads = torch.autograd.grad(out, inputs, grad_output)
    return grads[0], grads[1], grads[2]


def roi_align_grad(grad_output: Any, rois: Any, input_shape: tuple[int, int, int, int], aligned_height: int,
                   aligned_width: int, spatial_scale: float, sampling_ratio: int, aligned: bool) -> Any:
    """The gradient of average-pooled RoIAlign by its input: torchvision's backward kernel for CUDA tensors, else
    autograd through :func:`roi_align_torch` (linear in its input, so its values are not needed)."""
    import torch

    n, c, h, w = input_shape
    if rois.shape[0] == 0:
        return torch.zeros(input_shape, dtype=grad_output.dtype, device=grad_output.device)
    if _torchvision_serves(grad_output):
        import torchvision  # noqa: F401  (registers torch.ops.torchvision)

        return torch.ops.torchvision._roi_align_backward(
            grad_output, rois.to(grad_output.dtype), _f32(spatial_scale), int(aligned_height),
            int(aligned_width), n, c, h, w, int(sampling_ratio), bool(aligned))
    with torch.enable_grad():
        x = torch.zeros(input_shape, dtype=grad_output.dtype, device=grad_output.device, requires_grad=True)
        out, _, _ = roi_align_torch(x, rois, aligned_height, aligned_width, spatial_scale, sampling_ratio, 1, aligned)
        (grad,) = torch.autograd.grad(out, x, grad_output)
    return grad
