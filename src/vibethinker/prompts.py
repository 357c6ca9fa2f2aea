"""Prompt templates of the evaluation protocol (SPEC 3), shared by SFT, RL and evaluation.

Training and evaluation must see the same user turn, and it always goes through the tokenizer's own chat template
(no system message: the template's default applies), so a real checkpoint gets its native format.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from vibethinker.data.records import Problem

MATH_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."
CHOICE_SUFFIX = ("Please reason step-by-step and put your choice letter without any other text with \\boxed{} "
                 "in the end.")
CODE_INSTRUCTION = ("You will be given a question (problem specification) and will generate a correct Python program "
                    "that matches the specification and passes all tests.")
CODE_FORMAT = "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on "\
              "the sample inputs). Enclose your code within delimiters as follows."
FUNCTION_FORMAT = "Write the function in Python. Enclose your code within delimiters as follows."


def user_message(problem: Problem) -> str:
    """The single user turn for ``problem``."""
    if problem.domain == "code":
        stdin = problem.tests and problem.tests[0].type == "stdin"
        fmt = CODE_FORMAT if stdin else FUNCTION_FORMAT
        starter = problem.meta.get("starter_code")
        block = f"```python\n{starter}\n```" if starter else "```python\n# YOUR CODE HERE\n```"
        return f"{CODE_INSTRUCTION}\n\nQuestion: {problem.problem}\n\n### Format: {fmt}\n{block}\n\n### Answer: (use the provided format with backticks)\n"
    if problem.domain == "instruct":  # the instruction itself is the prompt (SPEC 2.7); no answer format
        return problem.problem
    if problem.choices:
        options = "\n".join(f"({chr(ord('A') + i)}) {choice}" for i, choice in enumerate(problem.choices))
        return f"{problem.problem}\n{options}\n{CHOICE_SUFFIX}"
    return f"{problem.problem} {MATH_SUFFIX}"


def render_prompt(tokenizer: PreTrainedTokenizerBase, problem: Problem) -> str:
    """Prompt text up to and including the assistant header, through the tokenizer's chat template."""
    return tokenizer.apply_chat_template([{"role": "user", "content": user_message(problem)}],
                                         tokenize=False, add_generation_prompt=True)


def render_response(tokenizer: PreTrainedTokenizerBase, problem: Problem, response: str) -> tuple[str, str]:
    """(prompt text, response text) for SFT, where the response text includes the template's end-of-turn marker.

    The response part is whatever the template appends after the generation prompt, so the model learns to emit the
    template's own end-of-turn token; templates that rewrite history (prompt not a prefix) fall back to
    ``response + eos``.
    """
    prompt = render_prompt(tokenizer, problem)
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": user_message(problem)}, {"role": "assistant", "content": response}],
        tokenize=False,
    )
    if full.startswith(prompt) and response in full[len(prompt):]:
        return prompt, full[len(prompt):].rstrip("\n")
    return prompt, response + (tokenizer.eos_token or "")
