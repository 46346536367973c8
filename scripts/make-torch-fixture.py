#!/usr/bin/env python3
"""Writes tiny GPT-J-shaped checkpoints with the real torch.save, so the TypeScript .bin reader is
checked against PyTorch's own output rather than against our own writer.

Run once (Debian: apt-get install python3-torch) and commit the outputs:
    python3 scripts/make-torch-fixture.py
Writes test/fixtures/torch-saved/<name>/{pytorch_model.bin, config.json, expected.json}.
"""
import collections
import json
import os

import torch

N_LAYER, N_EMBD, N_HEAD, ROTARY_DIM, N_POSITIONS, VOCAB = 2, 16, 2, 4, 16, 64
N_INNER = 4 * N_EMBD
OUT_ROOT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'torch-saved')


def gptj_state_dict():
    g = torch.Generator().manual_seed(0)
    randn = lambda *shape: torch.randn(*shape, generator=g)
    sd = collections.OrderedDict()
    sd['transformer.wte.weight'] = randn(VOCAB, N_EMBD)
    mask = torch.tril(torch.ones(N_POSITIONS, N_POSITIONS, dtype=torch.bool)).view(1, 1, N_POSITIONS, N_POSITIONS)
    for l in range(N_LAYER):
        p = f'transformer.h.{l}.'
        sd[p + 'ln_1.weight'] = 1 + 0.1 * randn(N_EMBD)
        sd[p + 'ln_1.bias'] = 0.1 * randn(N_EMBD)
        sd[p + 'attn.bias'] = mask.clone()
        sd[p + 'attn.masked_bias'] = torch.tensor(-1e9)
        # q/k/v as row slices of one fused storage: torch.save keeps the sharing, so the reader
        # must honour storage_offset.
        qkv = randn(3 * N_EMBD, N_EMBD)
        sd[p + 'attn.k_proj.weight'] = qkv[N_EMBD:2 * N_EMBD]
        sd[p + 'attn.v_proj.weight'] = qkv[2 * N_EMBD:]
        sd[p + 'attn.q_proj.weight'] = qkv[:N_EMBD]
        sd[p + 'attn.out_proj.weight'] = randn(N_EMBD, N_EMBD)
        sd[p + 'mlp.fc_in.weight'] = randn(N_INNER, N_EMBD)
        sd[p + 'mlp.fc_in.bias'] = 0.1 * randn(N_INNER)
        sd[p + 'mlp.fc_out.weight'] = randn(N_EMBD, N_INNER)
        sd[p + 'mlp.fc_out.bias'] = 0.1 * randn(N_EMBD)
    sd['transformer.ln_f.weight'] = 1 + 0.1 * randn(N_EMBD)
    sd['transformer.ln_f.bias'] = 0.1 * randn(N_EMBD)
    sd['lm_head.weight'] = randn(VOCAB, N_EMBD)
    sd['lm_head.bias'] = 0.1 * randn(VOCAB)
    # model.state_dict() attaches this; it pickles as a BUILD with nested dicts.
    sd._metadata = collections.OrderedDict([('', {'version': 1}), ('transformer', {'version': 1}), ('lm_head', {'version': 1})])
    return sd


def config(torch_dtype):
    return {
        'activation_function': 'gelu_new', 'architectures': ['GPTJForCausalLM'], 'attn_pdrop': 0.0,
        'bos_token_id': 50256, 'embd_pdrop': 0.0, 'eos_token_id': 50256, 'initializer_range': 0.02,
        'layer_norm_epsilon': 1e-05, 'model_type': 'gptj', 'n_embd': N_EMBD, 'n_head': N_HEAD,
        'n_inner': None, 'n_layer': N_LAYER, 'n_positions': N_POSITIONS, 'resid_pdrop': 0.0,
        'rotary': True, 'rotary_dim': ROTARY_DIM, 'tie_word_embeddings': False,
        'tokenizer_class': 'GPT2Tokenizer', 'torch_dtype': torch_dtype, 'use_cache': True,
        'vocab_size': VOCAB,
    }


def write(name, sd, torch_dtype):
    out = os.path.join(OUT_ROOT, name)
    os.makedirs(out, exist_ok=True)
    torch.save(sd, os.path.join(out, 'pytorch_model.bin'))
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(config(torch_dtype), f, indent=2)
    expected = {'torch_version': torch.__version__, 'tensors': {}, 'skipped': []}
    for k, t in sd.items():
        if k.endswith('.attn.bias') or k.endswith('.attn.masked_bias'):
            expected['skipped'].append(k)
            continue
        expected['tensors'][k] = {
            'dtype': str(t.dtype).replace('torch.', ''),
            'shape': list(t.shape),
            'sum': t.double().sum().item(),
            'first4': t.double().flatten()[:4].tolist(),
        }
    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)
    print(out, os.path.getsize(os.path.join(out, 'pytorch_model.bin')), 'bytes')


def converted(sd, dtype):
    out = collections.OrderedDict((k, v if v.dtype == torch.bool else v.to(dtype)) for k, v in sd.items())
    out._metadata = sd._metadata
    return out


if __name__ == '__main__':
    sd = gptj_state_dict()
    write('gptj-tiny-fp32', sd, 'float32')
    write('gptj-tiny-fp16', converted(sd, torch.float16), 'float16')
    write('gptj-tiny-bf16', converted(sd, torch.bfloat16), 'bfloat16')
    # Two files the reader must refuse clearly: a transposed (non-contiguous) weight, and the
    # pre-1.6 non-zip format.
    g = torch.Generator().manual_seed(1)
    torch.save({'transformer.wte.weight': torch.randn(4, 3, generator=g).t()}, os.path.join(OUT_ROOT, 'noncontiguous.bin'))
    torch.save({'lm_head.bias': torch.randn(3, generator=g)}, os.path.join(OUT_ROOT, 'legacy.bin'), _use_new_zipfile_serialization=False)
