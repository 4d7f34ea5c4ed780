/* tokenmill_py.c - the CPython extension tokenmill._tokenmill: a thin layer
 * over libtokenmill's public API (tokenmill.h). Encoding a batch converts the
 * strings to UTF-8 under the GIL, then releases it while worker threads, one
 * tkm_encoder each, encode lines taken from a shared counter; ids go into one
 * flat buffer (uint16 or uint32) with line offsets, which tokenmill/__init__.py
 * turns into numpy arrays or lists. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenmill.h"

typedef struct {
    PyObject_HEAD
    tkm_model *m;
    tkm_encoder *enc; /* for single-line calls, used under a lock */
    PyThread_type_lock lock;
} ModelObject;

static PyObject *raise_tkm(int rc, const char *what)
{
    const char *d = tkm_last_error();
    PyObject *exc = rc == TKM_EIO ? PyExc_OSError : rc == TKM_ENOMEM ? PyExc_MemoryError
                  : rc == TKM_ERANGE ? PyExc_IndexError : PyExc_ValueError;
    PyErr_Format(exc, "%s: %s", what, d && *d ? d : tkm_strerror(rc));
    return NULL;
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "tiktoken_pattern", NULL};
    PyObject *pathobj;
    int pattern = TKM_TIKTOKEN_AUTO;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|i", kwlist, PyUnicode_FSConverter, &pathobj, &pattern))
        return -1;
    const char *path = PyBytes_AS_STRING(pathobj);
    tkm_model *m = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = tkm_model_load_any(path, pattern, &m);
    Py_END_ALLOW_THREADS
    Py_DECREF(pathobj);
    if (rc < 0) {
        raise_tkm(rc, "cannot load the model");
        return -1;
    }
    tkm_encoder *e = NULL;
    if ((rc = tkm_encoder_new(m, &e)) < 0) {
        tkm_model_free(m);
        raise_tkm(rc, "cannot create an encoder");
        return -1;
    }
    if (!self->lock && !(self->lock = PyThread_allocate_lock())) {
        tkm_encoder_free(e);
        tkm_model_free(m);
        PyErr_NoMemory();
        return -1;
    }
    tkm_encoder_free(self->enc);
    tkm_model_free(self->m);
    self->m = m;
    self->enc = e;
    return 0;
}

static void Model_dealloc(ModelObject *self)
{
    tkm_encoder_free(self->enc);
    tkm_model_free(self->m);
    if (self->lock) PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ready(ModelObject *self)
{
    if (self->m) return 1;
    PyErr_SetString(PyExc_RuntimeError, "model not loaded");
    return 0;
}

/* encode(text: str | bytes) -> list[int] */
static PyObject *Model_encode(ModelObject *self, PyObject *arg)
{
    if (!ready(self)) return NULL;
    const char *s;
    Py_ssize_t n;
    if (PyUnicode_Check(arg)) {
        if (!(s = PyUnicode_AsUTF8AndSize(arg, &n))) return NULL;
    } else if (PyBytes_Check(arg)) {
        s = PyBytes_AS_STRING(arg);
        n = PyBytes_GET_SIZE(arg);
    } else {
        PyErr_SetString(PyExc_TypeError, "encode() wants a str or bytes");
        return NULL;
    }
    const int32_t *ids;
    size_t k;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    rc = tkm_encode(self->enc, s, (size_t)n, &ids, &k);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyThread_release_lock(self->lock);
        return raise_tkm(rc, "encode");
    }
    PyObject *out = PyList_New((Py_ssize_t)k);
    for (size_t i = 0; out && i < k; i++) {
        PyObject *v = PyLong_FromLong(ids[i]);
        if (!v) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, v);
    }
    PyThread_release_lock(self->lock);
    return out;
}

/* ---- batches ---- */

typedef struct {
    const char **s;
    size_t *len;
    size_t n;
    const tkm_model *m;
    atomic_size_t next;
    atomic_int failed;
    /* per line: where its ids are (thread, offset) and how many */
    uint32_t *who;
    size_t *off, *cnt;
    int32_t **buf; /* per thread */
    size_t *bufn, *bufcap;
    int rc;
    char err[512];
    pthread_mutex_t mu;
} batch;

typedef struct {
    batch *b;
    int t;
} worker_arg;

enum { CHUNK = 64 };

static void *batch_worker(void *p)
{
    worker_arg *a = p;
    batch *b = a->b;
    int t = a->t;
    tkm_encoder *e = NULL;
    int rc = tkm_encoder_new(b->m, &e);
    while (rc >= 0 && !atomic_load(&b->failed)) {
        size_t lo = atomic_fetch_add(&b->next, CHUNK);
        if (lo >= b->n) break;
        size_t hi = lo + CHUNK < b->n ? lo + CHUNK : b->n;
        for (size_t i = lo; i < hi && rc >= 0; i++) {
            const int32_t *ids;
            size_t k;
            if ((rc = tkm_encode(e, b->s[i], b->len[i], &ids, &k)) < 0) break;
            if (b->bufn[t] + k > b->bufcap[t]) {
                size_t cap = b->bufcap[t] ? b->bufcap[t] : 4096;
                while (cap < b->bufn[t] + k) cap *= 2;
                int32_t *nb = realloc(b->buf[t], cap * sizeof(int32_t));
                if (!nb) {
                    rc = TKM_ENOMEM;
                    break;
                }
                b->buf[t] = nb;
                b->bufcap[t] = cap;
            }
            memcpy(b->buf[t] + b->bufn[t], ids, k * sizeof(int32_t));
            b->who[i] = (uint32_t)t;
            b->off[i] = b->bufn[t];
            b->cnt[i] = k;
            b->bufn[t] += k;
        }
    }
    if (rc < 0) {
        pthread_mutex_lock(&b->mu);
        if (!b->rc) {
            b->rc = rc;
            const char *d = rc == TKM_ENOMEM ? "out of memory" : tkm_last_error();
            snprintf(b->err, sizeof b->err, "%s", d && *d ? d : tkm_strerror(rc));
        }
        pthread_mutex_unlock(&b->mu);
        atomic_store(&b->failed, 1);
    }
    tkm_encoder_free(e);
    return NULL;
}

/* encode_batch(texts: list[str|bytes], threads: int, width: int 2|4)
 *   -> (bytes ids, bytes offsets): ids as little-endian uint16/uint32, offsets
 *      n + 1 uint64 (line i is ids[offsets[i]:offsets[i+1]]) */
static PyObject *Model_encode_batch(ModelObject *self, PyObject *args)
{
    PyObject *seq;
    int threads, width;
    if (!ready(self) || !PyArg_ParseTuple(args, "Oii", &seq, &threads, &width)) return NULL;
    if (width != 2 && width != 4) {
        PyErr_SetString(PyExc_ValueError, "width must be 2 or 4");
        return NULL;
    }
    if (width == 2 && tkm_model_size(self->m) > 65536) {
        PyErr_SetString(PyExc_ValueError, "the vocabulary does not fit uint16");
        return NULL;
    }
    PyObject *fast = PySequence_Fast(seq, "encode() wants a str or a sequence of str");
    if (!fast) return NULL;
    size_t n = (size_t)PySequence_Fast_GET_SIZE(fast);
    if (threads < 1) threads = 1;
    if ((size_t)threads > (n + CHUNK - 1) / CHUNK) threads = (int)((n + CHUNK - 1) / CHUNK);
    if (threads < 1) threads = 1;
    batch b;
    memset(&b, 0, sizeof b);
    b.n = n;
    b.m = self->m;
    pthread_mutex_init(&b.mu, NULL);
    PyObject *result = NULL, *ids_obj = NULL, *off_obj = NULL;
    size_t nn = n ? n : 1;
    b.s = malloc(nn * sizeof(*b.s));
    b.len = malloc(nn * sizeof(size_t));
    b.who = malloc(nn * sizeof(uint32_t));
    b.off = malloc(nn * sizeof(size_t));
    b.cnt = malloc(nn * sizeof(size_t));
    b.buf = calloc((size_t)threads, sizeof(int32_t *));
    b.bufn = calloc((size_t)threads, sizeof(size_t));
    b.bufcap = calloc((size_t)threads, sizeof(size_t));
    pthread_t *tid = calloc((size_t)threads, sizeof(pthread_t));
    worker_arg *wa = calloc((size_t)threads, sizeof(worker_arg));
    if (!b.s || !b.len || !b.who || !b.off || !b.cnt || !b.buf || !b.bufn || !b.bufcap || !tid || !wa) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(fast, (Py_ssize_t)i);
        Py_ssize_t k;
        if (PyUnicode_Check(o)) {
            if (!(b.s[i] = PyUnicode_AsUTF8AndSize(o, &k))) goto done;
        } else if (PyBytes_Check(o)) {
            b.s[i] = PyBytes_AS_STRING(o);
            k = PyBytes_GET_SIZE(o);
        } else {
            PyErr_Format(PyExc_TypeError, "item %zu is %.80s, not str or bytes", i, Py_TYPE(o)->tp_name);
            goto done;
        }
        b.len[i] = (size_t)k;
    }
    /* the strings stay alive: `fast` holds them (a list or tuple is not
     * copied, but no Python code runs until the GIL is back) */
    int started = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int t = 0; t < threads; t++) {
        wa[t].b = &b;
        wa[t].t = t;
        if (t == 0) continue;
        if (pthread_create(&tid[t], NULL, batch_worker, &wa[t]) != 0) break;
        started = t;
    }
    batch_worker(&wa[0]);
    for (int t = 1; t <= started; t++) pthread_join(tid[t], NULL);
    Py_END_ALLOW_THREADS
    if (b.rc < 0) {
        PyErr_Format(b.rc == TKM_ENOMEM ? PyExc_MemoryError : PyExc_ValueError, "encode: %s", b.err);
        goto done;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += b.cnt[i];
    ids_obj = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(total * (size_t)width));
    off_obj = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)((n + 1) * sizeof(uint64_t)));
    if (!ids_obj || !off_obj) goto done;
    {
        char *dst = PyBytes_AS_STRING(ids_obj);
        uint64_t *offs = (uint64_t *)(void *)PyBytes_AS_STRING(off_obj);
        size_t pos = 0;
        Py_BEGIN_ALLOW_THREADS
        for (size_t i = 0; i < n; i++) {
            const int32_t *src = b.buf[b.who[i]] + b.off[i];
            offs[i] = pos;
            if (width == 4) {
                memcpy(dst + pos * 4, src, b.cnt[i] * 4);
            } else {
                uint16_t *d16 = (uint16_t *)(void *)(dst + pos * 2);
                for (size_t j = 0; j < b.cnt[i]; j++) d16[j] = (uint16_t)src[j];
            }
            pos += b.cnt[i];
        }
        offs[n] = pos;
        Py_END_ALLOW_THREADS
    }
    result = PyTuple_Pack(2, ids_obj, off_obj);
done:
    Py_XDECREF(ids_obj);
    Py_XDECREF(off_obj);
    Py_DECREF(fast);
    for (int t = 0; b.buf && t < threads; t++) free(b.buf[t]);
    free(b.s);
    free(b.len);
    free(b.who);
    free(b.off);
    free(b.cnt);
    free(b.buf);
    free(b.bufn);
    free(b.bufcap);
    free(tid);
    free(wa);
    pthread_mutex_destroy(&b.mu);
    return result;
}

/* decode(ids: iterable of int) -> str */
static PyObject *Model_decode(ModelObject *self, PyObject *arg)
{
    if (!ready(self)) return NULL;
    PyObject *fast = PySequence_Fast(arg, "decode() wants a sequence of ids");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!ids) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if (v == -1 && PyErr_Occurred()) {
            free(ids);
            Py_DECREF(fast);
            return NULL;
        }
        if (v < 0 || v >= tkm_model_size(self->m)) {
            free(ids);
            Py_DECREF(fast);
            return PyErr_Format(PyExc_IndexError, "id %ld at position %zd is outside the vocabulary (0..%d)", v, i,
                                tkm_model_size(self->m) - 1);
        }
        ids[i] = (int32_t)v;
    }
    Py_DECREF(fast);
    char *out = NULL;
    size_t outlen = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = tkm_decode(self->m, ids, (size_t)n, &out, &outlen);
    Py_END_ALLOW_THREADS
    free(ids);
    if (rc < 0) return raise_tkm(rc, "decode");
    PyObject *s = PyUnicode_DecodeUTF8(out, (Py_ssize_t)outlen, "replace");
    tkm_free(out);
    return s;
}

static PyObject *Model_id_to_piece(ModelObject *self, PyObject *arg)
{
    if (!ready(self)) return NULL;
    long id = PyLong_AsLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    size_t k;
    const char *p = id < 0 || id > INT32_MAX ? NULL : tkm_model_piece(self->m, (int)id, &k);
    if (!p) return PyErr_Format(PyExc_IndexError, "id %ld is outside the vocabulary (0..%d)", id,
                                tkm_model_size(self->m) - 1);
    /* byte-level vocabularies hold raw bytes: surrogateescape keeps them */
    return PyUnicode_DecodeUTF8(p, (Py_ssize_t)k, "surrogateescape");
}

static PyObject *Model_id_to_bytes(ModelObject *self, PyObject *arg)
{
    if (!ready(self)) return NULL;
    long id = PyLong_AsLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    size_t k;
    const char *p = id < 0 || id > INT32_MAX ? NULL : tkm_model_piece(self->m, (int)id, &k);
    if (!p) return PyErr_Format(PyExc_IndexError, "id %ld is outside the vocabulary", id);
    return PyBytes_FromStringAndSize(p, (Py_ssize_t)k);
}

static PyObject *Model_piece_to_id(ModelObject *self, PyObject *arg)
{
    if (!ready(self)) return NULL;
    const char *s;
    Py_ssize_t n;
    PyObject *tmp = NULL;
    if (PyUnicode_Check(arg)) {
        if (!(tmp = PyUnicode_AsEncodedString(arg, "utf-8", "surrogateescape"))) return NULL;
        s = PyBytes_AS_STRING(tmp);
        n = PyBytes_GET_SIZE(tmp);
    } else if (PyBytes_Check(arg)) {
        s = PyBytes_AS_STRING(arg);
        n = PyBytes_GET_SIZE(arg);
    } else {
        PyErr_SetString(PyExc_TypeError, "piece_to_id() wants a str or bytes");
        return NULL;
    }
    int id = tkm_model_piece_id(self->m, s, (size_t)n);
    Py_XDECREF(tmp);
    return PyLong_FromLong(id);
}

static PyObject *Model_info(ModelObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!ready(self)) return NULL;
    const tkm_model *m = self->m;
    const char *kind = tkm_model_kind(m) == TKM_MODEL_BPE ? "bpe" : tkm_model_kind(m) == TKM_MODEL_UNIGRAM ? "unigram"
                     : tkm_model_kind(m) == TKM_MODEL_WORD ? "word" : "char";
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:s}", "vocab_size", tkm_model_size(m), "bos_id", tkm_model_bos_id(m),
                         "eos_id", tkm_model_eos_id(m), "unk_id", tkm_model_unk_id(m), "pad_id", tkm_model_pad_id(m),
                         "model_type", kind);
}

static PyObject *Model_piece_type(ModelObject *self, PyObject *arg)
{
    if (!ready(self)) return NULL;
    long id = PyLong_AsLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    if (id < 0 || id >= tkm_model_size(self->m))
        return PyErr_Format(PyExc_IndexError, "id %ld is outside the vocabulary", id);
    return PyLong_FromLong((long)tkm_model_piece_type(self->m, (int)id));
}

static PyObject *Model_score(ModelObject *self, PyObject *arg)
{
    if (!ready(self)) return NULL;
    long id = PyLong_AsLong(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    if (id < 0 || id >= tkm_model_size(self->m))
        return PyErr_Format(PyExc_IndexError, "id %ld is outside the vocabulary", id);
    return PyFloat_FromDouble((double)tkm_model_score(self->m, (int)id));
}

static PyMethodDef Model_methods[] = {
    {"encode", (PyCFunction)Model_encode, METH_O, "encode(text) -> list[int]"},
    {"encode_batch", (PyCFunction)Model_encode_batch, METH_VARARGS,
     "encode_batch(texts, threads, width) -> (ids bytes, offsets bytes)"},
    {"decode", (PyCFunction)Model_decode, METH_O, "decode(ids) -> str"},
    {"id_to_piece", (PyCFunction)Model_id_to_piece, METH_O, "id_to_piece(id) -> str"},
    {"id_to_bytes", (PyCFunction)Model_id_to_bytes, METH_O, "id_to_bytes(id) -> bytes"},
    {"piece_to_id", (PyCFunction)Model_piece_to_id, METH_O, "piece_to_id(piece) -> int (-1 when absent)"},
    {"piece_type", (PyCFunction)Model_piece_type, METH_O, "piece_type(id) -> int (sentencepiece's numbering)"},
    {"score", (PyCFunction)Model_score, METH_O, "score(id) -> float"},
    {"info", (PyCFunction)Model_info, METH_NOARGS, "info() -> dict"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tokenmill._tokenmill.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A loaded tokenizer model (libtokenmill's tkm_model).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_tokenmill", "libtokenmill bindings (use the tokenmill package)", -1, NULL,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__tokenmill(void);
PyMODINIT_FUNC PyInit__tokenmill(void)
{
    if (PyType_Ready(&ModelType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&moddef);
    if (!mod) return NULL;
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(mod, "Model", (PyObject *)&ModelType) < 0) {
        Py_DECREF(&ModelType);
        Py_DECREF(mod);
        return NULL;
    }
    PyModule_AddStringConstant(mod, "TKM_VERSION", TKM_VERSION);
    return mod;
}
