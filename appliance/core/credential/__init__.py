"""Credential profiles and the shared codecs they build on (COSE, Base45, CBOR limits).

Bytes in, a typed credential or a reason code out. No IO.
"""
