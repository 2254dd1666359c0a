"""ISO/IEC 18013-5 mdoc (mobile driving licence) reading: spec mdl-reader.

Pure functions of bytes, keys, the trust snapshot and ``now`` (no IO, no clock): the bounded
CBOR reader that keeps bytes as received (``cbor``), COSE_Key (``cose_key``), the session
cryptography (``session_crypto``) and the verification of a DeviceResponse. Nothing is
imported here, so loading one part never loads the others.
"""
