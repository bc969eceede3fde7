"""LLM backends for generating training data: a local GGUF model (llama-cpp-python) or an OpenAI-compatible
server, both asked for JSON of a given schema; prompts are template files in `prompts/`."""

from knnie.llm.base import LLM, Completion, LLMError, Message
from knnie.llm.http import HttpLLM
from knnie.llm.load import load_llm
from knnie.llm.local import QWEN, LocalLLM, SplitModel, smollm2_file, split_model_file
from knnie.llm.prompts import messages

__all__ = ["LLM", "QWEN", "Completion", "HttpLLM", "LLMError", "LocalLLM", "Message", "SplitModel", "load_llm",
           "messages", "smollm2_file", "split_model_file"]
