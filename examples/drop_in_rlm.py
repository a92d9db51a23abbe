"""The drop-in RLM from Python: a question and a codebase in, an answer out.

Needs a root model (and optionally a cheaper worker model) that litellm can reach, for example:

    RLM_ROOT_MODEL=openai/gpt-4o RLM_WORKER_MODEL=openai/gpt-4o-mini OPENAI_API_KEY=... \\
        python examples/drop_in_rlm.py "Where is the retry policy configured?" ~/src/service

    # or fully local, with Ollama:
    RLM_ROOT_MODEL=ollama/qwen2.5-coder RLM_ROOT_API_BASE=http://localhost:11434 \\
        python examples/drop_in_rlm.py "Which modules open network sockets?" ~/src/service
"""

from __future__ import annotations

import sys

from rlm_mcp import RLM
from rlm_mcp.rlm import RLMError


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    question, paths = sys.argv[1], sys.argv[2:]
    try:
        rlm = RLM()  # models, API bases and budgets come from RLM_* variables (see the README)
    except RLMError as exc:
        print(exc, file=sys.stderr)
        return 2
    result = rlm.complete(question, paths)
    print(result.answer)
    usage = result.usage
    cost = "unknown" if usage.root_cost_usd is None else f"${usage.root_cost_usd:.4f}"
    print(f"\n[{result.status}] {usage.iterations} iterations, {usage.code_blocks} code blocks, root cost {cost}, "
          f"{result.worker_usage.get('calls', 0)} worker calls, {usage.elapsed_s:.1f} s; "
          f"trajectory: rlm-mcp trace {rlm.last_trajectory}", file=sys.stderr)
    return 0 if result.status != "failed" else 1


if __name__ == "__main__":
    sys.exit(main())
