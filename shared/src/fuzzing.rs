//! Fuzz bodies: each runs one parser of network input on arbitrary bytes.
