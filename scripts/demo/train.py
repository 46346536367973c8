"""Trains the demo GPT-J (see models/demo/README.md) on builtin:demo-train and writes models/demo.

Needs Debian's python3-torch (apt-get install python3-torch python3-numpy); no PyPI packages.
Input: token ids from scripts/demo/export-corpus.ts. Run through scripts/demo/train.sh.

The model is GPT-J's architecture at toy size, with parameter names exactly the Hugging Face
GPT-J keys, so the saved model.safetensors goes through the app's real GPT-J loading path.
"""
import argparse, json, math, os, struct, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--data', default='/tmp/logitscope-demo')
p.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '../../models/demo'))
p.add_argument('--steps', type=int, default=0, help='0: as many as fit in --minutes (measured on the first steps)')
p.add_argument('--minutes', type=float, default=42)
p.add_argument('--n-layer', type=int, default=6)
p.add_argument('--n-embd', type=int, default=128)
p.add_argument('--n-head', type=int, default=4)
p.add_argument('--rotary-dim', type=int, default=8)  # a quarter of the head, as GPT-J 6B's 64 of 256
p.add_argument('--seq', type=int, default=256)
p.add_argument('--batch', type=int, default=8)
p.add_argument('--lr', type=float, default=3e-3)
p.add_argument('--threads', type=int, default=1)
p.add_argument('--seed', type=int, default=0)
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
VOCAB, N_POSITIONS = 50400, 512  # GPT-J's padded vocabulary; 50257 real GPT-2 tokens


def rotate_every_two(x):  # (..., d) -> pairs (x0, x1) become (-x1, x0), interleaved as GPT-J does
    x1, x2 = x[..., ::2], x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def rotary(x, sin, cos, rot):  # x: (B, nh, T, hs); rotary on the first `rot` dims of each head only
    xr, xp = x[..., :rot], x[..., rot:]
    return torch.cat([xr * cos + rotate_every_two(xr) * sin, xp], dim=-1)


class Attn(nn.Module):
    def __init__(s, d, nh, rot):
        super().__init__()
        s.nh, s.hs, s.rot = nh, d // nh, rot
        s.q_proj, s.k_proj, s.v_proj, s.out_proj = (nn.Linear(d, d, bias=False) for _ in range(4))

    def forward(s, x, sin, cos, mask):
        B, T, D = x.shape
        q, k, v = (f(x).view(B, T, s.nh, s.hs).transpose(1, 2) for f in (s.q_proj, s.k_proj, s.v_proj))  # (B, nh, T, hs)
        q, k = rotary(q, sin, cos, s.rot), rotary(k, sin, cos, s.rot)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(s.hs)  # (B, nh, T, T)
        att = att.masked_fill(mask[:T, :T], float('-inf')).softmax(-1)
        return s.out_proj((att @ v).transpose(1, 2).reshape(B, T, D))


class MLP(nn.Module):
    def __init__(s, d):
        super().__init__()
        s.fc_in, s.fc_out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(s, x):
        return s.fc_out(F.gelu(s.fc_in(x), approximate='tanh'))  # gelu_new


class Block(nn.Module):
    def __init__(s, d, nh, rot):
        super().__init__()
        s.ln_1, s.attn, s.mlp = nn.LayerNorm(d), Attn(d, nh, rot), MLP(d)

    def forward(s, h, sin, cos, mask):
        x = s.ln_1(h)  # parallel residual: attention and MLP both read ln_1(h)
        return h + s.attn(x, sin, cos, mask) + s.mlp(x)


class Transformer(nn.Module):
    def __init__(s, a):
        super().__init__()
        s.wte = nn.Embedding(VOCAB, a.n_embd)
        s.h = nn.ModuleList(Block(a.n_embd, a.n_head, a.rotary_dim) for _ in range(a.n_layer))
        s.ln_f = nn.LayerNorm(a.n_embd)


class GPTJ(nn.Module):
    def __init__(s, a):
        super().__init__()
        s.transformer = Transformer(a)
        s.lm_head = nn.Linear(a.n_embd, VOCAB)  # GPT-J's lm_head has a bias
        inv = 1.0 / 10000 ** (torch.arange(0, a.rotary_dim, 2).float() / a.rotary_dim)
        ang = torch.arange(N_POSITIONS).float()[:, None] * inv[None]  # (P, rot/2)
        s.register_buffer('sin', ang.sin().repeat_interleave(2, -1), persistent=False)  # (P, rot)
        s.register_buffer('cos', ang.cos().repeat_interleave(2, -1), persistent=False)
        s.register_buffer('mask', torch.ones(N_POSITIONS, N_POSITIONS).triu(1).bool(), persistent=False)
        for n, w in s.named_parameters():
            if w.dim() == 2:  # residual writers scaled down as in GPT-2
                std = 0.02 / math.sqrt(2 * a.n_layer) if n.endswith(('out_proj.weight', 'fc_out.weight')) else 0.02
                nn.init.normal_(w, std=std)
            elif n.endswith('bias'):
                nn.init.zeros_(w)

    def forward(s, idx, rows=None):  # idx: (B, T) -> logits (B, T, V), or (B, T, len(rows)) over `rows` only
        T = idx.shape[1]
        h = s.transformer.wte(idx)
        for blk in s.transformer.h:
            h = blk(h, s.sin[:T], s.cos[:T], s.mask)
        h = s.transformer.ln_f(h)
        if rows is None:
            return s.lm_head(h)
        return F.linear(h, s.lm_head.weight[rows], s.lm_head.bias[rows])


def write_config(out):
    """config.json as EleutherAI/gpt-j-6b's, with the demo's sizes."""
    config = {
        'activation_function': 'gelu_new', 'architectures': ['GPTJForCausalLM'], 'attn_pdrop': 0.0,
        'bos_token_id': 50256, 'embd_pdrop': 0.0, 'eos_token_id': 50256, 'initializer_range': 0.02,
        'layer_norm_epsilon': 1e-05, 'model_type': 'gptj', 'n_embd': args.n_embd, 'n_head': args.n_head,
        'n_inner': None, 'n_layer': args.n_layer, 'n_positions': N_POSITIONS, 'resid_pdrop': 0.0,
        'rotary': True, 'rotary_dim': args.rotary_dim, 'scale_attn_weights': True,
        'tie_word_embeddings': False, 'torch_dtype': 'float16', 'use_cache': True, 'vocab_size': VOCAB,
    }
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
        f.write('\n')


def save(model, out, meta):
    """Hand-written safetensors (no pip package here): fp16, keys sorted, header 8-byte aligned."""
    os.makedirs(out, exist_ok=True)
    sd = {k: v.detach().to(torch.float16).contiguous().numpy() for k, v in model.state_dict().items()}
    header, blobs, at = {'__metadata__': {'format': 'pt'}}, [], 0
    for k in sorted(sd):
        b = sd[k].tobytes()
        header[k] = {'dtype': 'F16', 'shape': list(sd[k].shape), 'data_offsets': [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    tmp = os.path.join(out, 'model.safetensors.tmp')
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, os.path.join(out, 'model.safetensors'))  # a crash mid-write keeps the last good file
    write_config(out)
    with open(os.path.join(out, 'training.json'), 'w') as f:
        json.dump(meta, f, indent=2)


train = torch.from_numpy(np.fromfile(os.path.join(args.data, 'train.u16'), dtype='<u2').astype(np.int64))
held = torch.from_numpy(np.fromfile(os.path.join(args.data, 'heldout.u16'), dtype='<u2').astype(np.int64))
gen = torch.Generator().manual_seed(args.seed)


def batch(data, n, g):  # random windows of seq+1 tokens
    i = torch.randint(0, len(data) - args.seq - 1, (n,), generator=g)
    w = torch.stack([data[j:j + args.seq + 1] for j in i.tolist()])
    return w[:, :-1], w[:, 1:]


@torch.no_grad()
def heldout_loss(model, n=64):  # fixed windows, so every evaluation compares the same tokens
    model.eval()
    x, y = batch(held, n, torch.Generator().manual_seed(1234))
    loss = sum(F.cross_entropy(model(x[i:i + 8]).flatten(0, 1), y[i:i + 8].flatten()).item() for i in range(0, n, 8)) / (n // 8)
    model.train()
    return loss


model = GPTJ(args)
# The softmax over 50400 rows dominates the cost on a CPU. Training takes it over the ~36k ids
# that occur in the training split only; the other rows (GPT-J's padding, tokens absent from the
# corpus) get a fixed bias of UNSEEN_BIAS, so the full-vocabulary model the app runs gives them
# next to no probability. Held-out losses below use the full 50400-row softmax, as the app does.
UNSEEN_BIAS = -10.0
seen = torch.from_numpy(np.unique(train.numpy()))
remap = torch.full((VOCAB,), -1, dtype=torch.long)
remap[seen] = torch.arange(len(seen))
with torch.no_grad():
    model.lm_head.bias.fill_(UNSEEN_BIAS)
    model.lm_head.bias[seen] = 0.0
decay = [w for n, w in model.named_parameters() if w.dim() == 2 and 'wte' not in n]
rest = [w for n, w in model.named_parameters() if not (w.dim() == 2 and 'wte' not in n)]
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': rest, 'weight_decay': 0.0}], lr=args.lr, betas=(0.9, 0.95))
n_params = sum(w.numel() for w in model.parameters())
print(f'params {n_params:,}; train tokens {len(train):,} ({len(seen):,} distinct ids); held-out tokens {len(held):,}', flush=True)

steps, warmup, t0, step, ema = args.steps, 100, time.time(), 0, None
while steps == 0 or step < steps:
    if steps == 0 and step == 20:  # fix the schedule's length from the measured speed
        steps = max(100, int(args.minutes * 60 / ((time.time() - t0) / 20)))
        print(f'{(time.time() - t0) / 20:.2f} s/step -> {steps} steps', flush=True)
    total = steps or 10 ** 9
    lr = args.lr * min(1, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1, step / total))))
    for g in opt.param_groups:
        g['lr'] = lr
    x, y = batch(train, args.batch, gen)
    loss = F.cross_entropy(model(x, seen).flatten(0, 1), remap[y].flatten())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    step += 1
    ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
    last = step == steps
    if step % 50 == 0 or last:
        print(f'step {step}/{steps} loss {ema:.3f} lr {lr:.2e} {time.time() - t0:.0f}s', flush=True)
    if step % 100 == 0 or last:
        hl = heldout_loss(model)
        print(f'step {step} held-out loss {hl:.3f} ppl {math.exp(hl):.1f}', flush=True)
        save(model, args.out, {
            'steps': step, 'planned_steps': steps, 'tokens_seen': step * args.batch * args.seq,
            'train_loss_ema': round(ema, 4), 'heldout_loss': round(hl, 4), 'heldout_ppl': round(math.exp(hl), 2),
            'params': n_params, 'distinct_train_ids': len(seen), 'wall_seconds': round(time.time() - t0), 'threads': args.threads,
            'args': vars(args),
        })
