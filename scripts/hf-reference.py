#!/usr/bin/env python3
"""Runs Hugging Face transformers itself on a (tiny) checkpoint and prints what the float64 reference
computes, as JSON, so test/reference-families-hf.test.ts can compare the two.

    echo '{"cases": [{"dir": MODEL_DIR, "tokens": [1, 2, 3], "texts": ["Hello world"]}, ...]}' | hf-reference.py

prints {"results": [...]}, one per case (so torch is imported once), each
{"architecture", "missing_keys", "unexpected_keys", "mismatched_keys", "embeddings": [T][D],
"resid_post": [L][T][D], "logits": [T][V], "encodings": {...}}:
embeddings is the input of decoder layer 0 and resid_post[l] the output of layer l, both caught by
hooks on the layers themselves (so no question of what output_hidden_states puts last); logits are
the model's own. The model runs in float64 with eager attention. `encodings` gives, per text, the ids
from the `tokenizers` library and from AutoTokenizer. Needs torch and transformers (not part of the app).
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from tokenizers import Tokenizer


def decoder_layers(model):
    base = model.base_model
    for name in ("layers", "h"):
        if hasattr(base, name):
            return getattr(base, name)
    raise SystemExit(f"no decoder layers found on {type(base).__name__}")


def run_case(request):
    model_dir = request["dir"]
    model, info = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float64, attn_implementation="eager", output_loading_info=True
    )
    model.eval()
    layers = decoder_layers(model)
    caught = {"pre": None, "post": [None] * len(layers)}

    def first_input(module, args, kwargs):
        caught["pre"] = (args[0] if args else kwargs["hidden_states"]).detach()

    def output_of(index):
        def hook(module, args, kwargs, output):
            caught["post"][index] = (output[0] if isinstance(output, tuple) else output).detach()
        return hook

    layers[0].register_forward_pre_hook(first_input, with_kwargs=True)
    for i, layer in enumerate(layers):
        layer.register_forward_hook(output_of(i), with_kwargs=True)

    # Keys the file lacks would be randomly initialised: the test insists there are none.
    result = {
        "architecture": type(model).__name__,
        "missing_keys": sorted(info["missing_keys"]),
        "unexpected_keys": sorted(info["unexpected_keys"]),
        "mismatched_keys": sorted(str(k) for k in info["mismatched_keys"]),
    }
    if request.get("tokens"):
        with torch.no_grad():
            out = model(input_ids=torch.tensor([request["tokens"]]), use_cache=False)
        result["embeddings"] = caught["pre"][0].tolist()
        result["resid_post"] = [h[0].tolist() for h in caught["post"]]
        result["logits"] = out.logits[0].tolist()
        result["dtype"] = str(out.logits.dtype)
    texts = request.get("texts", [])
    if texts:
        raw = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
        auto = AutoTokenizer.from_pretrained(model_dir)
        result["encodings"] = {}
        for t in texts:
            ids = raw.encode(t).ids
            result["encodings"][t] = {"tokenizers": ids, "auto": auto(t)["input_ids"], "decoded": raw.decode(ids, skip_special_tokens=True)}
    return result


def main():
    request = json.load(sys.stdin)
    json.dump({"results": [run_case(case) for case in request["cases"]]}, sys.stdout)


if __name__ == "__main__":
    main()
