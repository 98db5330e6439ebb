"""Class-name text: normalisation, word vectors and text encoders."""
