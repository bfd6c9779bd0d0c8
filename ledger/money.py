"""Money is integer fen everywhere; Decimal only at the edges (JSON, text, rates)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ledger.errors import ValidationFailed

FEN_PER_YUAN = 100


def round_fen(value: Decimal) -> int:
    """Round a fractional amount of fen half up to whole fen (done once, at the end)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan_to_fen(text: str | int | Decimal) -> int:
    """Parse a yuan amount with at most two decimal places into fen; never via float."""
    if isinstance(text, float):  # pragma: no cover - guarded for callers that ignore types
        raise ValidationFailed("amounts must not be floats", value=repr(text))
    try:
        value = Decimal(str(text).strip().replace(",", ""))
    except InvalidOperation:
        raise ValidationFailed("not a money amount", value=str(text)) from None
    if not value.is_finite():
        raise ValidationFailed("not a money amount", value=str(text))
    fen = value * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValidationFailed("at most two decimal places", value=str(text))
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    """Format fen as a yuan decimal string with two places: 123450 -> '1234.50'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole}.{cents:02d}"


def fen_to_text(fen: int) -> str:
    """Format fen for Chinese text: 123450 -> '1,234.50元'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole:,}.{cents:02d}元"
