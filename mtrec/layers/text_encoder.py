"""Token ids -> one vector per text: embedding, encoder, pooling, missing text."""

import keras
from keras import ops

ENCODERS = ("bag", "cnn", "transformer")
POOLINGS = ("mean", "max", "attention")

# Added to the scores / values of padding so they never win a max or a softmax
# (finite, so a row of padding only gives finite values, never NaN).
_LARGE_NEGATIVE = -1e9


@keras.saving.register_keras_serializable(package="mtrec.layers")
class TextEncoder(keras.layers.Layer):
    """Embeds token ids, encodes them, and pools them into one vector.

    - `encoder="bag"`: the token embeddings as they are (bag of words).
    - `encoder="cnn"`: `num_layers` 1-D convolutions of width 3 (ReLU,
      `embedding_dim` filters); padding is zeroed before and after each
      convolution, so it never leaks into a token's window.
    - `encoder="transformer"`: learned position embeddings, then
      `num_layers` post-norm blocks of `keras.layers.MultiHeadAttention`
      (padding masked out of the keys) and a feed-forward layer of
      `2 * embedding_dim` units.

    Pooling, always over the non-padding tokens only: `"mean"`, `"max"` or
    `"attention"` (a learned query `q` scores token `i` as
    `x_i . q / sqrt(embedding_dim)`, softmax over the tokens; `q` starts at
    zero, so attention pooling starts as mean pooling).

    A text without any token (empty, missing, or only punctuation) has
    nothing to pool: it gets this layer's learned `missing` embedding
    (initialised to zeros). So does a row whose `drop` flag is set (modality
    dropout).

    Args:
        vocabulary_size: int. Number of token ids, padding (0) and OOV (1)
            included.
        embedding_dim: int. Width of the token embeddings and the output.
        max_length: int. Longest token sequence (size of the position
            table of the transformer).
        encoder: str. `"bag"`, `"cnn"` or `"transformer"`. Defaults to
            `"bag"`.
        pooling: str. `"mean"`, `"max"` or `"attention"`. Defaults to
            `"mean"`.
        num_layers: int. Convolutions or transformer blocks. Defaults to `1`.
        num_heads: int. Attention heads of the transformer; defaults to `2`
            (`1` when `embedding_dim` is odd).
        embeddings_regularizer: optional regularizer of the token table.

    Call arguments:
        token_ids: int tensor `(batch, length)`, 0 for padding, with
            `length <= max_length`.
        drop: optional bool tensor `(batch,)`: rows to treat as missing.
        return_missing: bool. Also return the missing mask.

    Returns:
        tensor `(batch, embedding_dim)`; with `return_missing`, also a bool
        tensor `(batch,)`, True where the missing embedding was used.
    """

    def __init__(self, vocabulary_size, embedding_dim, max_length, encoder="bag",
                 pooling="mean", num_layers=1, num_heads=None,
                 embeddings_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {list(ENCODERS)}, got {encoder!r}.")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}.")
        for arg, value in (("vocabulary_size", vocabulary_size),
                           ("embedding_dim", embedding_dim), ("max_length", max_length),
                           ("num_layers", num_layers)):
            if int(value) < 1:
                raise ValueError(f"{arg} must be >= 1, got {value!r}.")
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.max_length = int(max_length)
        self.encoder = encoder
        self.pooling = pooling
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads or (2 if self.embedding_dim % 2 == 0 else 1))
        if self.embedding_dim % self.num_heads:
            raise ValueError(
                f"embedding_dim ({self.embedding_dim}) must be divisible by "
                f"num_heads ({self.num_heads}).")
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        dim = self.embedding_dim
        self.token_embedding = keras.layers.Embedding(
            self.vocabulary_size, dim, embeddings_regularizer=self.embeddings_regularizer,
            dtype=self.dtype_policy, name="tokens")
        self.convolutions = []
        self.position_embedding = None
        # One list per sublayer kind, block i at index i (flat lists, which
        # Keras tracks and saves).
        self.attentions, self.attention_norms = [], []
        self.hidden_layers, self.output_layers, self.output_norms = [], [], []
        if encoder == "cnn":
            self.convolutions = [
                keras.layers.Conv1D(dim, 3, padding="same", activation="relu",
                                    dtype=self.dtype_policy, name=f"conv_{i}")
                for i in range(self.num_layers)]
        elif encoder == "transformer":
            self.position_embedding = keras.layers.Embedding(
                self.max_length, dim, dtype=self.dtype_policy, name="positions")
            for i in range(self.num_layers):
                self.attentions.append(keras.layers.MultiHeadAttention(
                    self.num_heads, dim // self.num_heads, dtype=self.dtype_policy, name=f"attention_{i}"))
                self.attention_norms.append(keras.layers.LayerNormalization(
                    epsilon=1e-6, dtype=self.dtype_policy, name=f"attention_norm_{i}"))
                self.hidden_layers.append(keras.layers.Dense(
                    2 * dim, activation="relu", dtype=self.dtype_policy, name=f"feed_forward_{i}_hidden"))
                self.output_layers.append(keras.layers.Dense(
                    dim, dtype=self.dtype_policy, name=f"feed_forward_{i}_output"))
                self.output_norms.append(keras.layers.LayerNormalization(
                    epsilon=1e-6, dtype=self.dtype_policy, name=f"output_norm_{i}"))

    def build(self, input_shape=None):
        dim = self.embedding_dim
        sequence = (None, self.max_length, dim)
        self.token_embedding.build((None, self.max_length))
        for conv in self.convolutions:
            conv.build(sequence)
        if self.position_embedding is not None:
            self.position_embedding.build((self.max_length,))
        for i in range(len(self.attentions)):
            self.attentions[i].build(sequence, sequence)
            self.attention_norms[i].build(sequence)
            self.hidden_layers[i].build(sequence)
            self.output_layers[i].build((None, self.max_length, 2 * dim))
            self.output_norms[i].build(sequence)
        if self.pooling == "attention":
            self.pooling_query = self.add_weight(
                name="pooling_query", shape=(dim,), initializer="zeros")
        self.missing = self.add_weight(name="missing", shape=(dim,), initializer="zeros")
        self.built = True

    def call(self, token_ids, drop=None, return_missing=False, training=False):
        # (batch, length): 1.0 on tokens, 0.0 on padding
        not_pad = ops.cast(ops.greater(token_ids, 0), self.compute_dtype)
        # (batch, length, dim)
        x = self.token_embedding(token_ids)
        x = self.encode(x, not_pad, training=training)
        pooled = self.pool(x, not_pad)
        # (batch,): no token to pool, or dropped
        missing = ops.equal(ops.sum(not_pad, axis=1), 0.0)
        if drop is not None:
            missing = ops.logical_or(missing, ops.cast(drop, "bool"))
        out = ops.where(missing[:, None], self.missing[None, :], pooled)
        return (out, missing) if return_missing else out

    def encode(self, x, not_pad, training=False):
        """`(batch, length, dim)` token embeddings -> encoded tokens."""
        mask = not_pad[..., None]
        for conv in self.convolutions:
            x = conv(x * mask) * mask
        if self.attentions:
            length = ops.shape(x)[1]
            # (length, dim) learned positions, broadcast over the batch
            x = x + self.position_embedding(ops.arange(length))[None, :, :]
            keys = ops.greater(not_pad, 0.0)
            # (batch, queries, keys): every query may attend to every token
            attention_mask = ops.logical_and(ops.ones_like(keys)[:, :, None],
                                             keys[:, None, :])
            for i in range(len(self.attentions)):
                attended = self.attentions[i](x, x, attention_mask=attention_mask,
                                              training=training)
                x = self.attention_norms[i](x + attended)
                hidden = self.hidden_layers[i](x)
                x = self.output_norms[i](x + self.output_layers[i](hidden))
        return x

    def pool(self, x, not_pad):
        """`(batch, length, dim)`, `(batch, length)` -> `(batch, dim)`."""
        if self.pooling == "max":
            x = x + (1.0 - not_pad[..., None]) * _LARGE_NEGATIVE
            return ops.max(x, axis=1)
        if self.pooling == "attention":
            # (batch, length) scores, padding pushed out of the softmax
            scores = ops.einsum("bld,d->bl", x, self.pooling_query) / (
                self.embedding_dim ** 0.5)
            scores = scores + (1.0 - not_pad) * _LARGE_NEGATIVE
            weights = ops.softmax(scores, axis=-1) * not_pad
            return ops.einsum("bl,bld->bd", weights, x)
        total = ops.sum(x * not_pad[..., None], axis=1)
        return total / ops.maximum(ops.sum(not_pad, axis=1, keepdims=True), 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.embedding_dim)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim, "max_length": self.max_length,
                "encoder": self.encoder, "pooling": self.pooling,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "embeddings_regularizer": keras.regularizers.serialize(
                    self.embeddings_regularizer) if self.embeddings_regularizer else None}
