"""The sealkeeper client SDK: runs on the user's machine and imports no server code.

Signing keeps documents local: only digests go to the server, which returns
CMS SignedData values; :mod:`.pades` wraps them into PDFs and :mod:`.cades`
into detached ``.p7s`` files.
"""
