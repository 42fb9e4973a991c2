//! Byte formats of peer messages. (Being written: see the helper brief.)
