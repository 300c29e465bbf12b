/* panbench.analysis._rle: COCO run-length encoding of masks, in C (what COCO mask AP reads).
 *
 *   encode(masks, n, h, w) -> list[str]
 *       The compressed COCO RLE counts (pycocotools' rleEncode + rleToString) of n binary masks given as one
 *       C-contiguous buffer of n * h * w bytes in row-major (n, h, w) order, nonzero inside: the runs are counted
 *       in COCO's column-major order straight from the row-major bytes (no transposed copy), inside each
 *       mask's bounding box (found 8 bytes at a time); outside it they are zeros counted, not read.
 *   segments(ids, h, w, seg_ids) -> list[str]
 *       The compressed counts of the mask `ids == seg_id` for each of seg_ids (an int64 buffer), from one
 *       column-major pass over an (h, w) row-major uint32 id map: the runs of equal ids, each given to its segment.
 *
 * Both release the GIL while they count and compress; the Python strings are made after.
 */
#include "_common.h" /* the id table (pb_idmap), from panbench/pq */
#include <string.h>

/* pycocotools' rleToString: each count (from the third on, minus the count two before) in 5-bit groups, low
 * first, 0x20 marking that more follow, offset by 48.  `out` holds at least 7 * m + 1 chars. */
static Py_ssize_t to_string(const uint32_t *cnts, Py_ssize_t m, char *out) {
    Py_ssize_t p = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        long long x = (long long)cnts[i];
        if (i > 2) x -= (long long)cnts[i - 2];
        int more = 1;
        while (more) {
            char c = (char)(x & 0x1f);
            x >>= 5;
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            out[p++] = (char)(c + 48);
        }
    }
    out[p] = 0;
    return p;
}

/* The encoded masks while the GIL is released: one malloc'd string per mask, NULL on out of memory. */
typedef struct {
    char **s;
    Py_ssize_t *len;
    Py_ssize_t n;
} strings;

static int strings_init(strings *o, Py_ssize_t n) {
    o->n = n;
    o->s = calloc(n ? n : 1, sizeof(char *));
    o->len = calloc(n ? n : 1, sizeof(Py_ssize_t));
    return o->s && o->len ? 0 : -1;
}

static void strings_free(strings *o) {
    if (o->s)
        for (Py_ssize_t i = 0; i < o->n; i++) free(o->s[i]);
    free(o->s);
    free(o->len);
}

/* counts -> o->s[i]; -1 on out of memory */
static int keep(strings *o, Py_ssize_t i, const uint32_t *cnts, Py_ssize_t m) {
    o->s[i] = malloc((size_t)(7 * m + 1));
    if (!o->s[i]) return -1;
    o->len[i] = to_string(cnts, m, o->s[i]);
    return 0;
}

static PyObject *as_list(strings *o) {
    PyObject *list = PyList_New(o->n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < o->n; i++) {
        PyObject *u = PyUnicode_DecodeASCII(o->s[i], o->len[i], NULL);
        if (!u) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, u);
    }
    return list;
}

/* pycocotools' rleEncode state: counts of 0s, 1s, 0s, ... */
typedef struct {
    uint32_t *cnts;
    Py_ssize_t k;
    uint32_t c;
    int p;
} counter;

static inline void push(counter *s, int v, uint32_t len) {
    if (v != s->p && len) {
        s->cnts[s->k++] = s->c;
        s->c = 0;
        s->p = v;
    }
    s->c += len;
}

/* the bounding box [y0, y1) x [x0, x1) of a row-major mask's nonzero bytes, read row by row 8 bytes at a time;
 * y1 == 0 for an empty mask */
static void bounds(const uint8_t *t, Py_ssize_t h, Py_ssize_t w, Py_ssize_t *y0, Py_ssize_t *y1, Py_ssize_t *x0,
                   Py_ssize_t *x1) {
    *y0 = h, *y1 = 0, *x0 = w, *x1 = 0;
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint8_t *row = t + y * w;
        Py_ssize_t first = -1, last = -1, x = 0;
        for (; x + 8 <= w; x += 8) {
            uint64_t v;
            memcpy(&v, row + x, 8);
            if (v) {
                if (first < 0) first = x + __builtin_ctzll(v) / 8;
                last = x + 7 - __builtin_clzll(v) / 8;
            }
        }
        for (; x < w; x++)
            if (row[x]) {
                if (first < 0) first = x;
                last = x;
            }
        if (first < 0) continue;
        if (*y1 == 0) *y0 = y;
        *y1 = y + 1;
        if (first < *x0) *x0 = first;
        if (last + 1 > *x1) *x1 = last + 1;
    }
}

/* the column-major runs of one (h, w) row-major mask (pycocotools' rleEncode of its Fortran-order copy): the
 * columns and rows outside the mask's bounding box are counted as zeros without being read */
static Py_ssize_t mask_counts(const uint8_t *t, Py_ssize_t h, Py_ssize_t w, uint32_t *cnts) {
    counter s = {cnts, 0, 0, 0};
    Py_ssize_t y0, y1, x0, x1;
    bounds(t, h, w, &y0, &y1, &x0, &x1);
    if (y1 == 0) {
        push(&s, 0, (uint32_t)(h * w));
    } else {
        push(&s, 0, (uint32_t)(x0 * h));
        for (Py_ssize_t x = x0; x < x1; x++) {
            const uint8_t *col = t + x;
            push(&s, 0, (uint32_t)y0);
            for (Py_ssize_t y = y0; y < y1; y++) push(&s, col[y * w] != 0, 1);
            push(&s, 0, (uint32_t)(h - y1));
        }
        push(&s, 0, (uint32_t)((w - x1) * h));
    }
    s.cnts[s.k++] = s.c;
    return s.k;
}

static PyObject *py_encode(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t n, h, w;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnn", &buf, &n, &h, &w)) return NULL;
    if (n < 0 || h < 0 || w < 0 || buf.len != n * h * w || !PyBuffer_IsContiguous(&buf, 'C')) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "encode: give n * h * w contiguous bytes");
        return NULL;
    }
    strings o;
    uint32_t *cnts = malloc(sizeof(uint32_t) * (size_t)(h * w + 1));
    int bad = strings_init(&o, n) || !cnts;
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *m = buf.buf;
    for (Py_ssize_t i = 0; i < n && !bad; i++) bad = keep(&o, i, cnts, mask_counts(m + i * h * w, h, w, cnts));
    Py_END_ALLOW_THREADS
    free(cnts);
    PyBuffer_Release(&buf);
    PyObject *out = bad ? PyErr_NoMemory() : as_list(&o);
    strings_free(&o);
    return out;
}

/* a growable list of runs (start, length) per segment */
typedef struct {
    uint32_t *r;
    Py_ssize_t n, cap;
} runs;

static int add_run(runs *q, uint32_t start, uint32_t len) {
    if (q->n + 2 > q->cap) {
        Py_ssize_t cap = q->cap ? 2 * q->cap : 64;
        uint32_t *r = realloc(q->r, sizeof(uint32_t) * (size_t)cap);
        if (!r) return -1;
        q->r = r;
        q->cap = cap;
    }
    q->r[q->n++] = start;
    q->r[q->n++] = len;
    return 0;
}

/* the runs of one segment as COCO counts: zeros before each run, the run, the zeros after the last one */
static Py_ssize_t run_counts(const runs *q, uint32_t total, uint32_t *cnts) {
    Py_ssize_t k = 0;
    uint32_t end = 0;
    for (Py_ssize_t i = 0; i < q->n; i += 2) {
        cnts[k++] = q->r[i] - end;
        cnts[k++] = q->r[i + 1];
        end = q->r[i] + q->r[i + 1];
    }
    if (total > end || k == 0) cnts[k++] = total - end;
    return k;
}

static int segments_pass(const uint32_t *ids, Py_ssize_t h, Py_ssize_t w, const int64_t *seg, Py_ssize_t ns,
                         strings *o) {
    /* the table keeps ids + 1 (it keeps no 0, VOID for PQ; here id 0 is a segment like any other) */
    pb_idmap t = {0};
    runs *per = calloc(ns ? ns : 1, sizeof(runs));
    int64_t *keys = malloc(sizeof(int64_t) * (size_t)(ns ? ns : 1));
    uint32_t *cnts = NULL;
    int bad = !per || !keys;
    for (Py_ssize_t k = 0; k < ns && !bad; k++) keys[k] = seg[k] + 1;
    bad = bad || pb_idmap_init(&t, keys, ns);
    uint32_t total = (uint32_t)(h * w), start = 0, cur = 0, pos = 0;
    for (Py_ssize_t x = 0; x < w && !bad; x++)
        for (Py_ssize_t y = 0; y < h; y++, pos++) {
            uint32_t v = ids[y * w + x];
            if (pos == 0) {
                cur = v;
            } else if (v != cur) {
                int32_t k = pb_idmap_get(&t, cur + 1u) - 1;
                if (k >= 0 && add_run(&per[k], start, pos - start)) {
                    bad = 1;
                    break;
                }
                cur = v;
                start = pos;
            }
        }
    if (!bad && total) {
        int32_t k = pb_idmap_get(&t, cur + 1u) - 1;
        if (k >= 0) bad = add_run(&per[k], start, total - start);
    }
    Py_ssize_t most = 1;
    for (Py_ssize_t k = 0; k < ns && !bad; k++)
        if (per[k].n + 1 > most) most = per[k].n + 1;
    cnts = bad ? NULL : malloc(sizeof(uint32_t) * (size_t)most);
    bad = bad || !cnts;
    for (Py_ssize_t k = 0; k < ns && !bad; k++) {
        int32_t owner = pb_idmap_get(&t, (uint32_t)seg[k] + 1u) - 1; /* a repeated id: its last position */
        bad = keep(o, k, cnts, run_counts(&per[owner], total, cnts));
    }
    free(cnts);
    if (per)
        for (Py_ssize_t k = 0; k < ns; k++) free(per[k].r);
    free(per);
    free(keys);
    pb_idmap_free(&t);
    return bad ? -1 : 0;
}

static PyObject *py_segments(PyObject *self, PyObject *args) {
    Py_buffer ids, seg;
    Py_ssize_t h, w;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*", &ids, &h, &w, &seg)) return NULL;
    if (h < 0 || w < 0 || h * w >= 0xFFFFFFFFLL || ids.len != 4 * h * w || seg.len % 8 ||
        !PyBuffer_IsContiguous(&ids, 'C') || !PyBuffer_IsContiguous(&seg, 'C')) {
        PyBuffer_Release(&ids);
        PyBuffer_Release(&seg);
        PyErr_SetString(PyExc_ValueError, "segments: give h * w contiguous uint32 ids and int64 segment ids");
        return NULL;
    }
    strings o;
    Py_ssize_t ns = seg.len / 8;
    int bad = strings_init(&o, ns);
    Py_BEGIN_ALLOW_THREADS
    if (!bad) bad = segments_pass(ids.buf, h, w, seg.buf, ns, &o);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ids);
    PyBuffer_Release(&seg);
    PyObject *out = bad ? PyErr_NoMemory() : as_list(&o);
    strings_free(&o);
    return out;
}

static PyMethodDef methods[] = {
    {"encode", py_encode, METH_VARARGS, "encode(masks, n, h, w) -> list of COCO RLE count strings"},
    {"segments", py_segments, METH_VARARGS, "segments(ids, h, w, seg_ids) -> list of COCO RLE count strings"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rle", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rle(void) { return PyModule_Create(&module); }
