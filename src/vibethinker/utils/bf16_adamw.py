"""AdamW for bf16 weights with fp32 moments and Kahan-compensated updates.

Memory per parameter: bf16 weight (2 bytes) + bf16 gradient (2) + fp32 first and second moments (8) + a bf16
compensation buffer (2) = 14 bytes, against 16 for fp32 weights and gradients with fp32 AdamW (the default path,
with bf16 autocast): 6 GiB less for a 3B model. The trade-off: a bf16 weight holds 8 significant bits, and an update
smaller than half its spacing (``lr * step < |w| * 2^-9``; at lr 1e-6 nearly every update) would round away. The
compensation buffer keeps what each rounding lost and adds it back in the next step (Kahan summation, as in
torchdistx's AnyPrecisionAdamW), so small updates accumulate instead of vanishing; the weights the forward reads
are still bf16, so the rollout/trainer log-prob gap is that of bf16 weights.

Per step, for each parameter ``w`` with gradient ``g`` (computed in fp32):

    m = b1 m + (1 - b1) g,    v = b2 v + (1 - b2) g^2
    u = -lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) - lr * weight_decay * w
    exact = w + c + u,        w = bf16(exact),        c = bf16(exact - w)

With fp32 parameters ``c`` stays 0 and the step is torch's AdamW's.
"""

from __future__ import annotations

import math

import torch


class CompensatedAdamW(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict["state"]
        super().load_state_dict(state_dict)
        # torch casts floating state to each parameter's dtype on load; the moments stay fp32
        params = [param for group in self.param_groups for param in group["params"]]
        for index, values in saved.items():
            for key in ("exp_avg", "exp_avg_sq"):
                if key in values:
                    self.state[params[index]][key] = values[key].to(params[index].device, torch.float32)

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(param, dtype=torch.float32)
                    if param.dtype != torch.float32:
                        state["compensation"] = torch.zeros_like(param)
                state["step"] += 1
                step = float(state["step"])
                grad = param.grad.float()
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** step)).add_(eps)
                weight = param.float()
                update = exp_avg.div(denom).mul_(-lr / (1 - beta1 ** step))
                if weight_decay:
                    update.add_(weight, alpha=-lr * weight_decay)
                if "compensation" not in state:
                    param.add_(update)
                    continue
                exact = weight.add_(state["compensation"].float()).add_(update)
                param.copy_(exact)
                state["compensation"].copy_(exact.sub_(param.float()))
        return loss
