"""One exception hierarchy for the whole workbench.

Catch `AnnotatorError` to handle anything the workbench raises on purpose; the subclasses say
which stage failed. Messages name the file, line, field or article to fix, on one line, so the
CLI can print them as they are.
"""

from __future__ import annotations


class AnnotatorError(Exception):
    """Base of every error the workbench raises on purpose."""


class TaxonomyError(AnnotatorError):
    """A taxonomy file is broken, or a label is not in the taxonomy."""


class RecordError(AnnotatorError):
    """A record file has a line that is not a valid record.

    `path` and `line` say where; `str(error)` reads `FILE:LINE: what is wrong`.
    """

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        super().__init__(f"{path}:{line}: {message}")


class IngestError(AnnotatorError):
    """An input file or row could not be turned into an article."""


class ConfigError(AnnotatorError):
    """The configuration (annotator.toml, environment, arguments) is incomplete or wrong."""


class LLMError(AnnotatorError):
    """The language model endpoint refused or failed a request for good."""


class LLMRefused(LLMError):
    """The endpoint refuses every request (401/403/404: key, access, URL or model): stop the run."""


class LLMUnavailable(LLMError):
    """The endpoint kept failing (timeouts, 5xx, 429, dropped connections) until the retries ran out.

    Unlike a plain `LLMError` (this one request was refused, e.g. a 400), trying again later may work.
    """


class EndpointDown(LLMRefused):
    """Several requests in a row got no answer at all (refused, reset, timed out): stop the run.

    One message naming the endpoint and what to check beats one error line per article and a run
    that spends hours retrying a server that is not there.
    """


class NotChatCompletion(LLMRefused):
    """The endpoint answered 200 with something that is not a chat completion (a login page, a
    wrong base URL): stop the run, naming the content type and the first bytes."""


class LabelStudioError(AnnotatorError):
    """Label Studio is unreachable, refused a request, or holds something unexpected."""


class NotBuiltYet(AnnotatorError):
    """A planned command that a later issue fills in."""
