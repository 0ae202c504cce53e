"""Seals (six per organization plus one personal e-signature per employee) and
the grants that let employees use them."""
