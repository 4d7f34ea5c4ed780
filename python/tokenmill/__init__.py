"""tokenmill - Python bindings of libtokenmill (the C library; no second
implementation here): load a sentencepiece .model, a Hugging Face
tokenizer.json or a tiktoken file and encode with the ids libsentencepiece
(or HF tokenizers / tiktoken) gives.

    >>> import tokenmill
    >>> tok = tokenmill.Tokenizer("m.model")
    >>> tok.encode("Hello world")            # list[int]
    >>> tok.encode(lines, threads=8)         # list of numpy arrays (uint16/uint32)
    >>> tok.decode(ids)

Batches are encoded by C threads with the GIL released.
"""
import os as _os

from ._tokenmill import TKM_VERSION as __version__
from ._tokenmill import Model as _Model

try:
    import numpy as _np
except ImportError:  # numpy is optional: batches come back as lists
    _np = None

__all__ = ["Tokenizer", "PIECE_NORMAL", "PIECE_UNKNOWN", "PIECE_CONTROL", "PIECE_USER_DEFINED", "PIECE_UNUSED",
           "PIECE_BYTE", "TIKTOKEN_R50K", "TIKTOKEN_CL100K", "TIKTOKEN_O200K", "__version__"]

# piece types, numbered as sentencepiece's (and tokenmill.h's tkm_piece_type)
PIECE_NORMAL, PIECE_UNKNOWN, PIECE_CONTROL, PIECE_USER_DEFINED, PIECE_UNUSED, PIECE_BYTE = 1, 2, 3, 4, 5, 6
# tiktoken pre-tokenization patterns (tokenmill.h TKM_TIKTOKEN_*); None: from the file name
TIKTOKEN_R50K, TIKTOKEN_CL100K, TIKTOKEN_O200K = 1, 2, 3


class Tokenizer:
    """A tokenizer loaded from a sentencepiece .model, a HF tokenizer.json
    (first non-blank byte '{') or a tiktoken rank file (name ending in
    .tiktoken, or any name with tiktoken_pattern given)."""

    def __init__(self, path, tiktoken_pattern=None):
        self._m = _Model(_os.fspath(path), 0 if tiktoken_pattern is None else int(tiktoken_pattern))
        info = self._m.info()
        self.vocab_size = info["vocab_size"]
        #: special ids, -1 when the model has none (as sentencepiece)
        self.bos_id = info["bos_id"]
        self.eos_id = info["eos_id"]
        self.unk_id = info["unk_id"]
        self.pad_id = info["pad_id"]
        self.model_type = info["model_type"]
        self._dtype = None if _np is None else (_np.uint16 if self.vocab_size <= 65536 else _np.uint32)

    def __len__(self):
        return self.vocab_size

    def __repr__(self):
        return "<tokenmill.Tokenizer %s, %d pieces>" % (self.model_type, self.vocab_size)

    def encode(self, text, threads=None, as_numpy=None):
        """Ids of a str (or UTF-8 bytes): list[int]. A list/tuple of them:
        encoded by `threads` C threads (default: all CPUs) with the GIL
        released; returns a list of numpy arrays (uint16 when the vocabulary
        fits, else uint32) when numpy is importable (as_numpy=False: lists).
        Nothing is added around a line (no BOS/EOS), as sentencepiece's
        encode."""
        if isinstance(text, (str, bytes)):
            return self._m.encode(text)
        if not isinstance(text, (list, tuple)):
            text = list(text)
        if threads is None:
            threads = _os.cpu_count() or 1
        use_np = _np is not None if as_numpy is None else bool(as_numpy)
        if use_np and _np is None:
            raise ImportError("as_numpy=True needs numpy")
        width = 2 if use_np and self._dtype is _np.uint16 else 4
        flat, offs = self._m.encode_batch(text, int(threads), width)
        if use_np:
            ids = _np.frombuffer(flat, dtype=self._dtype)
            o = _np.frombuffer(offs, dtype=_np.uint64).astype(_np.intp)
            return [ids[o[i]:o[i + 1]] for i in range(len(text))]
        import array
        a = array.array("I" if array.array("I").itemsize == 4 else "L")
        a.frombytes(flat)
        o = array.array("Q")
        o.frombytes(offs)
        return [a[o[i]:o[i + 1]].tolist() for i in range(len(text))]

    def encode_flat(self, texts, threads=None):
        """A batch as one numpy array of ids and n + 1 offsets (line i is
        ids[offsets[i]:offsets[i + 1]]): no per-line objects at all."""
        if _np is None:
            raise ImportError("encode_flat needs numpy")
        if threads is None:
            threads = _os.cpu_count() or 1
        flat, offs = self._m.encode_batch(list(texts) if not isinstance(texts, (list, tuple)) else texts,
                                          int(threads), 2 if self._dtype is _np.uint16 else 4)
        return _np.frombuffer(flat, dtype=self._dtype), _np.frombuffer(offs, dtype=_np.uint64)

    def decode(self, ids):
        """Text of ids, as libsentencepiece's DecodeIds (a numpy array or any
        sequence of ints). A list of sequences decodes each."""
        if _np is not None and isinstance(ids, _np.ndarray):
            if ids.ndim != 1:
                raise ValueError("decode() wants a 1-D array of ids")
            return self._m.decode(ids.tolist())
        if isinstance(ids, (list, tuple)) and ids and not isinstance(ids[0], int) and \
                not (_np is not None and isinstance(ids[0], _np.integer)):
            return [self.decode(x) for x in ids]
        return self._m.decode(ids)

    def id_to_piece(self, id):
        """The piece string of an id (raw bytes of byte-level vocabularies as
        surrogate escapes; id_to_bytes gives them as bytes)."""
        return self._m.id_to_piece(int(id))

    def id_to_bytes(self, id):
        return self._m.id_to_bytes(int(id))

    def piece_to_id(self, piece):
        """Id of a piece, or None when the vocabulary has no such piece."""
        i = self._m.piece_to_id(piece)
        return None if i < 0 else i

    def piece_type(self, id):
        """PIECE_NORMAL, PIECE_UNKNOWN, PIECE_CONTROL, ... of an id."""
        return self._m.piece_type(int(id))

    def score(self, id):
        return self._m.score(int(id))
