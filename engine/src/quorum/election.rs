//! Fast leader election. (Being written.)
