"""papermill's parameter translator for the nsae command language (kernelspec language "nsae").

`papermill nb.ipynb out.ipynb -p tokens 100000 -p model "gpt2"` injects, after the cell tagged `parameters`:

    # Parameters
    tokens = 100000
    model = "gpt2"

Values nsae cannot write (None, dicts, non-finite floats) are refused with the parameter named, never written as
something else.
"""
import math

from papermill.exceptions import PapermillException
from papermill.translators import Translator, papermill_translators

LANGUAGE = "nsae"


class NSAETranslator(Translator):
    @classmethod
    def translate_escaped_str(cls, str_val):
        escaped = str_val.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'

    @classmethod
    def translate_none(cls, val):
        raise PapermillException("nsae has no null value: give the parameter a number, string, bool or list")

    @classmethod
    def translate_int(cls, val):
        return str(val)

    @classmethod
    def translate_float(cls, val):
        if not math.isfinite(val):
            raise PapermillException(f"nsae numbers are finite; got {val!r}")
        return repr(val)

    @classmethod
    def translate_bool(cls, val):
        return "true" if val else "false"

    @classmethod
    def translate_dict(cls, val):
        raise PapermillException("nsae has no dictionaries: pass each entry as its own parameter")

    @classmethod
    def translate_list(cls, val):
        return "[" + ", ".join(cls.translate(v) for v in val) + "]"

    @classmethod
    def comment(cls, cmt_str):
        return f"# {cmt_str}".strip()

    @classmethod
    def assign(cls, name, str_val):
        return f"{name} = {str_val}"

    @classmethod
    def codify(cls, parameters, comment="Parameters"):
        lines = [cls.comment(comment)] if comment else []
        for name, val in parameters.items():
            try:
                lines.append(cls.assign(name, cls.translate(val)))
            except PapermillException as error:
                raise PapermillException(f"parameter {name!r}: {error}") from None
        return "\n".join(lines) + "\n"


def register() -> None:
    papermill_translators.register(LANGUAGE, NSAETranslator)


register()
