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

static PyObject *Model_save(ModelObject *self, PyObject *arg)
{
    if (!ready(self)) return NULL;
    PyObject *pathobj;
    if (!PyUnicode_FSConverter(arg, &pathobj)) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = tkm_model_save(self->m, PyBytes_AS_STRING(pathobj));
    Py_END_ALLOW_THREADS
    Py_DECREF(pathobj);
    if (rc < 0) return raise_tkm(rc, "save");
    Py_RETURN_NONE;
}

static PyObject *Model_serialized(ModelObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!ready(self)) return NULL;
    size_t n;
    const uint8_t *p = tkm_model_bytes(self->m, &n);
    return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
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
    {"save", (PyCFunction)Model_save, METH_O, "save(path): writes the .model atomically"},
    {"serialized", (PyCFunction)Model_serialized, METH_NOARGS, "serialized() -> bytes of the .model"},
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

/* ---- training ---- */

/* Reads an optional dict entry into *out (int / float / str); -1 on a type error. */
static int opt_int(PyObject *d, const char *k, int *out)
{
    PyObject *v = PyDict_GetItemString(d, k);
    if (!v) return 0;
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < INT32_MIN || x > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: %ld is out of range", k, x);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int opt_double(PyObject *d, const char *k, double *out)
{
    PyObject *v = PyDict_GetItemString(d, k);
    if (!v) return 0;
    double x = PyFloat_AsDouble(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

static int opt_float(PyObject *d, const char *k, float *out)
{
    double x = *out;
    if (opt_double(d, k, &x) < 0) return -1;
    *out = (float)x;
    return 0;
}

static int opt_u64(PyObject *d, const char *k, uint64_t *out)
{
    PyObject *v = PyDict_GetItemString(d, k);
    if (!v) return 0;
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    *out = (uint64_t)x;
    return 0;
}

static int opt_str(PyObject *d, const char *k, const char **out)
{
    PyObject *v = PyDict_GetItemString(d, k);
    if (!v) return 0;
    if (!(*out = PyUnicode_AsUTF8(v))) return -1;
    return 0;
}

/* A list of str as a C array (pointers into the str objects, valid while d lives). */
static int opt_list(PyObject *d, const char *k, const char ***out, int *n)
{
    PyObject *v = PyDict_GetItemString(d, k);
    if (!v) return 0;
    Py_ssize_t m = PyList_Check(v) ? PyList_GET_SIZE(v) : -1;
    if (m < 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a list of str", k);
        return -1;
    }
    const char **a = PyMem_Calloc((size_t)(m ? m : 1), sizeof(char *));
    if (!a) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < m; i++)
        if (!(a[i] = PyUnicode_AsUTF8(PyList_GET_ITEM(v, i)))) {
            PyMem_Free(a);
            return -1;
        }
    *out = a;
    *n = (int)m;
    return 0;
}

static int fill_options(PyObject *d, tkm_train_options *o, const char ***uds, const char ***ctl)
{
    const char *mt = NULL;
    if (opt_str(d, "model_type", &mt) < 0) return -1;
    if (mt) {
        if (!strcmp(mt, "bpe")) o->model_type = TKM_MODEL_BPE;
        else if (!strcmp(mt, "unigram")) o->model_type = TKM_MODEL_UNIGRAM;
        else {
            PyErr_Format(PyExc_ValueError, "model_type '%s': bpe or unigram", mt);
            return -1;
        }
    }
    if (opt_int(d, "vocab_size", &o->vocab_size) < 0 || opt_float(d, "character_coverage", &o->character_coverage) < 0 ||
        opt_int(d, "max_piece_length", &o->max_piece_length) < 0 || opt_int(d, "split_digits", &o->split_digits) < 0 ||
        opt_int(d, "split_by_unicode_script", &o->split_by_unicode_script) < 0 ||
        opt_int(d, "split_by_number", &o->split_by_number) < 0 ||
        opt_int(d, "split_by_whitespace", &o->split_by_whitespace) < 0 ||
        opt_int(d, "allow_whitespace_only_pieces", &o->allow_whitespace_only_pieces) < 0 ||
        opt_int(d, "byte_fallback", &o->byte_fallback) < 0 || opt_int(d, "add_dummy_prefix", &o->add_dummy_prefix) < 0 ||
        opt_int(d, "remove_extra_whitespaces", &o->remove_extra_whitespaces) < 0 ||
        opt_int(d, "hard_vocab_limit", &o->hard_vocab_limit) < 0 || opt_int(d, "unk_id", &o->unk_id) < 0 ||
        opt_int(d, "bos_id", &o->bos_id) < 0 || opt_int(d, "eos_id", &o->eos_id) < 0 ||
        opt_int(d, "pad_id", &o->pad_id) < 0 || opt_str(d, "unk_piece", &o->unk_piece) < 0 ||
        opt_str(d, "bos_piece", &o->bos_piece) < 0 || opt_str(d, "eos_piece", &o->eos_piece) < 0 ||
        opt_str(d, "pad_piece", &o->pad_piece) < 0 || opt_str(d, "unk_surface", &o->unk_surface) < 0 ||
        opt_int(d, "threads", &o->threads) < 0 || opt_int(d, "seed_size", &o->seed_size) < 0 ||
        opt_float(d, "shrinking_factor", &o->shrinking_factor) < 0 ||
        opt_int(d, "num_sub_iterations", &o->num_sub_iterations) < 0 ||
        opt_int(d, "enable_differential_privacy", &o->enable_differential_privacy) < 0 ||
        opt_double(d, "differential_privacy_noise_level", &o->differential_privacy_noise_level) < 0 ||
        opt_u64(d, "differential_privacy_clipping_threshold", &o->differential_privacy_clipping_threshold) < 0 ||
        opt_u64(d, "random_seed", &o->random_seed) < 0)
        return -1;
    if (opt_list(d, "user_defined_symbols", uds, &o->n_user_defined) < 0) return -1;
    o->user_defined_symbols = *uds;
    if (opt_list(d, "control_symbols", ctl, &o->n_control) < 0) return -1;
    o->control_symbols = *ctl;
    return 0;
}

/* train(files: list[str], lines: iterable | None, options: dict) -> Model */
static PyObject *mod_train(PyObject *Py_UNUSED(mod), PyObject *args)
{
    PyObject *files, *lines, *opts;
    if (!PyArg_ParseTuple(args, "O!OO!", &PyList_Type, &files, &lines, &PyDict_Type, &opts)) return NULL;
    tkm_train_options o;
    tkm_train_options_init(&o);
    const char **uds = NULL, **ctl = NULL;
    tkm_trainer *t = NULL;
    tkm_model *m = NULL;
    PyObject *it = NULL, *res = NULL;
    int rc = 0;
    if (fill_options(opts, &o, &uds, &ctl) < 0) goto done;
    if ((rc = tkm_trainer_new(&o, &t)) < 0) {
        raise_tkm(rc, "train");
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(files); i++) {
        PyObject *pb;
        if (!PyUnicode_FSConverter(PyList_GET_ITEM(files, i), &pb)) goto done;
        Py_BEGIN_ALLOW_THREADS
        rc = tkm_trainer_add_file(t, PyBytes_AS_STRING(pb));
        Py_END_ALLOW_THREADS
        Py_DECREF(pb);
        if (rc < 0) {
            raise_tkm(rc, "train");
            goto done;
        }
    }
    if (lines != Py_None) {
        if (!(it = PyObject_GetIter(lines))) goto done;
        PyObject *item;
        while ((item = PyIter_Next(it))) {
            const char *s;
            Py_ssize_t n;
            if (PyUnicode_Check(item)) s = PyUnicode_AsUTF8AndSize(item, &n);
            else if (PyBytes_Check(item)) s = PyBytes_AS_STRING(item), n = PyBytes_GET_SIZE(item);
            else {
                PyErr_Format(PyExc_TypeError, "sentence_iterator gave %.80s, not str", Py_TYPE(item)->tp_name);
                s = NULL;
            }
            /* a str may hold several lines: each counts as one, as in a file */
            while (s) {
                const char *nl = memchr(s, '\n', (size_t)n);
                size_t k = nl ? (size_t)(nl - s) : (size_t)n;
                if ((rc = tkm_trainer_add_line(t, s, k)) < 0) break;
                if (!nl) break;
                n -= (Py_ssize_t)k + 1;
                s = nl + 1;
            }
            Py_DECREF(item);
            if (!s) goto done;
            if (rc < 0) {
                raise_tkm(rc, "train");
                goto done;
            }
        }
        if (PyErr_Occurred()) goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = tkm_trainer_train(t, &m);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        raise_tkm(rc, "train");
        goto done;
    }
    tkm_encoder *e = NULL;
    if ((rc = tkm_encoder_new(m, &e)) < 0) {
        raise_tkm(rc, "train");
        goto done;
    }
    ModelObject *mo = (ModelObject *)ModelType.tp_alloc(&ModelType, 0);
    if (!mo || !(mo->lock = PyThread_allocate_lock())) {
        tkm_encoder_free(e);
        Py_XDECREF(mo);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    mo->m = m;
    mo->enc = e;
    m = NULL;
    res = (PyObject *)mo;
done:
    Py_XDECREF(it);
    tkm_model_free(m);
    tkm_trainer_free(t);
    PyMem_Free(uds);
    PyMem_Free(ctl);
    return res;
}

static PyMethodDef mod_methods[] = {
    {"train", mod_train, METH_VARARGS, "train(files, lines, options) -> Model"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_tokenmill", "libtokenmill bindings (use the tokenmill package)", -1, mod_methods,
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
