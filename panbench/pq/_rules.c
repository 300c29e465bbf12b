/* panbench.pq._rules: PQ under other implementations' rules from counted intersection tables, in C.
 *
 *   quirk_sums(items, isthing, codes, out) -> list of (item, state)
 *       For each item (inter, gt_ids, gt_cats, gt_areas, gt_crowd, pred_cats): an image's intersection table
 *       ((n_gt + 2) x (n_pred + 1) int64, row 0 ground-truth VOID, row n_gt + 1 the pixels of unlisted ids, column 0
 *       predicted VOID: pq.matching.match_image's layout), its ground truth's int64 ids, category indices and JSON
 *       areas, one byte per crowd flag, and its predictions' int64 category indices.  `isthing`: one byte per
 *       category.  `codes`: int32, QUIRK_FIELDS per state (pq.quirks.quirk_code: crowd mode 0 last, 1 all, 2 none,
 *       3 eomt; pixel_areas, unlisted_void, stuff_merge, void_union, fn_void, float32, void_class).  Each item's
 *       sums under each state are added to `out` (int64, states x 4 x categories: TP, FP, FN and the matches' IoU
 *       in units of 2^-40, rounded half to even), as pq.quirks.quirk_sums computes them, bit for bit.
 *       Returned: the (item, state) pairs left out, where EoMT's crowd patch would take the crowd that stands for a
 *       category from the iteration order of a Python set (two unmatched crowd targets of one category): the
 *       caller adds those with quirk_sums.  Releases the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __GNUC__ /* the match's own functions go unused here */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include "_match_core.h" /* the thresholds: PB_MATCH_IOU, PB_IGNORED_SHARE */
#ifdef __GNUC__
#pragma GCC diagnostic pop
#endif

#define QUIRK_FIELDS 8
enum { Q_CROWD, Q_PIXEL_AREAS, Q_UNLISTED_VOID, Q_STUFF_MERGE, Q_VOID_UNION, Q_FN_VOID, Q_FLOAT32, Q_VOID_CLASS };
enum { CROWD_LAST, CROWD_ALL, CROWD_NONE, CROWD_EOMT };
#define IOU_SCALE 1099511627776.0 /* 2^40: pq.sums.IOU_BITS */

typedef struct {
    const int64_t *inter, *gid, *gcat, *garea, *pcat;
    const uint8_t *gcrowd;
    Py_ssize_t G, P;
} image;

typedef struct {
    int64_t id;
    Py_ssize_t row;
} keyed;

typedef struct { /* one image's colours under one state; sized for any state of the largest image */
    int64_t *m, *t_area, *t_json, *p_area;
    Py_ssize_t *rows, *t_of_row, *p_of_col, *crowd_list, *crowd_last, *crowd_of, *merged_t, *merged_p;
    int64_t *t_cat, *p_cat;
    uint8_t *t_crowd, *t_json_set, *t_matched, *p_matched;
    int64_t *ev; /* the image's additions (kind, category, value), applied when the state is not left out */
    keyed *keys;
    Py_ssize_t cap_g, cap_p, n_cats;
} work;

static double ratio(int64_t a, int64_t b, int f32) {
    if (f32) {
        volatile float x = (float)a, y = (float)b, q = x / y; /* torch's division of integer tensors */
        return (double)q;
    }
    return (double)a / (double)b;
}

static int work_size(work *w, Py_ssize_t G, Py_ssize_t P, Py_ssize_t n) {
    if (G <= w->cap_g && P <= w->cap_p && n <= w->n_cats) return 0;
    Py_ssize_t g = G > w->cap_g ? G : w->cap_g, p = P > w->cap_p ? P : w->cap_p, c = n > w->n_cats ? n : w->n_cats;
    Py_ssize_t nt = g + 2, np_ = p + 1;
    void **slots[] = {(void **)&w->m, (void **)&w->t_area, (void **)&w->t_json, (void **)&w->p_area,
                      (void **)&w->rows, (void **)&w->t_of_row, (void **)&w->p_of_col,
                      (void **)&w->crowd_list, (void **)&w->crowd_last, (void **)&w->crowd_of, (void **)&w->merged_t,
                      (void **)&w->merged_p, (void **)&w->t_cat, (void **)&w->p_cat, (void **)&w->t_crowd,
                      (void **)&w->t_json_set, (void **)&w->t_matched, (void **)&w->p_matched, (void **)&w->ev,
                      (void **)&w->keys};
    size_t sizes[] = {(size_t)(nt * np_) * 8, (size_t)nt * 8, (size_t)nt * 8, (size_t)np_ * 8,
                      (size_t)g * sizeof(Py_ssize_t), (size_t)nt * sizeof(Py_ssize_t), (size_t)np_ * sizeof(Py_ssize_t),
                      (size_t)g * sizeof(Py_ssize_t), (size_t)(c + 3) * sizeof(Py_ssize_t),
                      (size_t)(c + 3) * sizeof(Py_ssize_t), (size_t)(c + 3) * sizeof(Py_ssize_t),
                      (size_t)(c + 3) * sizeof(Py_ssize_t), (size_t)nt * 8, (size_t)np_ * 8, (size_t)nt, (size_t)nt,
                      (size_t)nt, (size_t)np_, (size_t)(6 * (nt * np_ + nt + np_)) * 8, (size_t)g * sizeof(keyed)};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        void *mem = realloc(*slots[k], sizes[k] ? sizes[k] : 1);
        if (!mem) return -1;
        *slots[k] = mem;
    }
    w->cap_g = g, w->cap_p = p, w->n_cats = c;
    return 0;
}

static void work_free(work *w) {
    void *all[] = {w->m, w->t_area, w->t_json, w->p_area, w->rows, w->t_of_row, w->p_of_col,
                   w->crowd_list, w->crowd_last, w->crowd_of, w->merged_t, w->merged_p, w->t_cat, w->p_cat,
                   w->t_crowd, w->t_json_set, w->t_matched, w->p_matched, w->ev, w->keys};
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) free(all[k]);
}

static int by_id(const void *a, const void *b) { /* by id, then row: numpy's argsort(kind="stable") */
    const keyed *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->row < y->row ? -1 : (x->row > y->row);
}

/* The target colours (0 VOID, 1 the unlisted ids' colour where they are not VOID, then the segments': a stuff
 * category's one where merged) and the predictions' (0 predicted VOID: VOID, or the class num_classes), their
 * table `m` (prediction colour x target colour) and areas.  Returns the number of target colours; *np_out the
 * predictions'. */
static Py_ssize_t colours(const image *im, const uint8_t *isthing, Py_ssize_t n, const int32_t *q, work *w,
                          Py_ssize_t *np_out, Py_ssize_t *n_rows) {
    const Py_ssize_t G = im->G, P = im->P, W = P + 1;
    const int eomt = q[Q_CROWD] == CROWD_EOMT, merge = q[Q_STUFF_MERGE];
    Py_ssize_t nr = 0;
    for (Py_ssize_t g = 0; g < G; g++) {
        if (eomt) {
            int64_t s = 0;
            for (Py_ssize_t k = 0; k < W; k++) s += im->inter[(g + 1) * W + k];
            if (s <= 0) continue; /* EoMT's input: the segments in the PNG */
        }
        w->rows[nr++] = g;
    }
    if (eomt && nr > 1) {
        for (Py_ssize_t i = 0; i < nr; i++) w->keys[i].id = im->gid[w->rows[i]], w->keys[i].row = w->rows[i];
        qsort(w->keys, (size_t)nr, sizeof(keyed), by_id);
        for (Py_ssize_t i = 0; i < nr; i++) w->rows[i] = w->keys[i].row;
    }
    *n_rows = nr;
    for (Py_ssize_t c = 0; c < n + 3; c++) w->merged_t[c] = w->merged_p[c] = -1, w->crowd_last[c] = -1;
    Py_ssize_t nt = 2;
    w->t_cat[0] = n + 1, w->t_cat[1] = n + 2; /* VOID; the unlisted ids' colour, a class of none */
    w->t_json[0] = w->t_json[1] = 0, w->t_json_set[0] = w->t_json_set[1] = 0, w->t_crowd[0] = w->t_crowd[1] = 0;
    w->t_of_row[0] = 0, w->t_of_row[G + 1] = q[Q_UNLISTED_VOID] ? 0 : 1;
    for (Py_ssize_t g = 0; g < G; g++) w->t_of_row[g + 1] = -1; /* not a row of EoMT's input */
    for (Py_ssize_t i = 0; i < nr; i++) {
        Py_ssize_t g = w->rows[i];
        int64_t c = im->gcat[g];
        int inst0 = merge && !isthing[c];
        Py_ssize_t tc;
        if (inst0 && w->merged_t[c] >= 0) {
            tc = w->merged_t[c];
        } else {
            tc = nt++;
            w->t_cat[tc] = c, w->t_json[tc] = 0, w->t_json_set[tc] = 1, w->t_crowd[tc] = 0;
            if (inst0) w->merged_t[c] = tc;
        }
        w->t_of_row[g + 1] = tc;
        w->t_json[tc] += im->garea[g];
        /* EoMT: a colour's flag is that of the row its instance indexes (a merged stuff's instance 0: the first) */
        int crowd = im->gcrowd[eomt && inst0 ? w->rows[0] : g] != 0;
        if (crowd && q[Q_CROWD] != CROWD_NONE) {
            w->t_crowd[tc] = 1;
            w->crowd_list[i] = tc;
            w->crowd_last[c] = tc;
        } else {
            w->crowd_list[i] = -1;
        }
    }
    Py_ssize_t npc = 1;
    w->p_cat[0] = q[Q_VOID_CLASS] ? n : n + 1;
    w->p_of_col[0] = 0;
    for (Py_ssize_t j = 0; j < P; j++) {
        int64_t c = im->pcat[j];
        if (merge && !isthing[c] && w->merged_p[c] >= 0) {
            w->p_of_col[j + 1] = w->merged_p[c];
            continue;
        }
        w->p_cat[npc] = c;
        if (merge && !isthing[c]) w->merged_p[c] = npc;
        w->p_of_col[j + 1] = npc++;
    }
    memset(w->m, 0, (size_t)(npc * nt) * 8);
    for (Py_ssize_t r = 0; r < G + 2; r++) {
        Py_ssize_t tc = w->t_of_row[r];
        if (tc < 0) continue;
        const int64_t *row = im->inter + r * W;
        for (Py_ssize_t k = 0; k < W; k++)
            if (row[k] > 0) w->m[w->p_of_col[k] * nt + tc] += row[k];
    }
    for (Py_ssize_t t = 0; t < nt; t++) w->t_area[t] = 0;
    for (Py_ssize_t p = 0; p < npc; p++) {
        int64_t s = 0;
        for (Py_ssize_t t = 0; t < nt; t++) s += w->m[p * nt + t], w->t_area[t] += w->m[p * nt + t];
        w->p_area[p] = s;
    }
    *np_out = npc;
    return nt;
}

static int64_t rule_area(const work *w, Py_ssize_t t, int pixel_areas) {
    return !pixel_areas && w->t_json_set[t] ? w->t_json[t] : w->t_area[t];
}

/* One image's sums under the state `q` added to `out` (4 x n: TP, FP, FN, IoU in 2^-40), as pq.quirks.quirk_sums
 * adds them; 1 (nothing added) where EoMT's crowd patch would read a Python set's order, -1 out of memory. */
static int image_state(const image *im, const uint8_t *isthing, Py_ssize_t n, const int32_t *q, work *w,
                       int64_t *out) {
    Py_ssize_t npc, nr;
    const Py_ssize_t nt = colours(im, isthing, n, q, w, &npc, &nr);
    const int f32 = q[Q_FLOAT32], pixel = q[Q_PIXEL_AREAS], crowd = q[Q_CROWD];
    const int pv_void = !q[Q_VOID_CLASS]; /* prediction colour 0 is VOID (else the class num_classes) */
    const int64_t *m = w->m;
    Py_ssize_t ne = 0;
    memset(w->t_matched, 0, (size_t)nt);
    memset(w->p_matched, 0, (size_t)npc);
    for (Py_ssize_t p = pv_void ? 1 : 0; p < npc; p++) {
        for (Py_ssize_t t = 1; t < nt; t++) {
            const int64_t v = m[p * nt + t];
            if (v <= 0 || w->t_crowd[t] || w->p_cat[p] != w->t_cat[t]) continue;
            int64_t uni = w->p_area[p] - m[p * nt] + rule_area(w, t, pixel) - v;
            if (q[Q_VOID_UNION] && pv_void) uni -= m[t];
            const double iou = ratio(v, uni, f32);
            if (iou > PB_MATCH_IOU) {
                w->p_matched[p] = 1, w->t_matched[t] = 1;
                w->ev[ne++] = 0, w->ev[ne++] = w->t_cat[t], w->ev[ne++] = 1;
                w->ev[ne++] = 3, w->ev[ne++] = w->t_cat[t], w->ev[ne++] = llrint(iou * IOU_SCALE);
            }
        }
    }
    for (Py_ssize_t c = 0; c < n + 3; c++) w->crowd_of[c] = -1;
    for (Py_ssize_t t = 1; t < nt; t++) { /* the missed targets: t_matched 2 marks a missed crowd */
        const int64_t c = w->t_cat[t];
        if (w->t_area[t] <= 0 || w->t_matched[t] || c >= n) continue;
        if (q[Q_FN_VOID] && ratio(pv_void ? m[t] : 0, rule_area(w, t, pixel), f32) > PB_IGNORED_SHARE) continue;
        if (!w->t_crowd[t]) {
            w->ev[ne++] = 2, w->ev[ne++] = c, w->ev[ne++] = 1;
            continue;
        }
        w->t_matched[t] = 2;
        w->crowd_of[c] = w->crowd_of[c] == -1 ? t : -2; /* -2: two of them, EoMT's set order picks one */
    }
    for (Py_ssize_t p = pv_void ? 1 : 0; p < npc; p++) {
        const int64_t c = w->p_cat[p];
        if (w->p_area[p] <= 0 || w->p_matched[p] || c >= n) continue;
        int64_t covered = m[p * nt];
        if (crowd == CROWD_EOMT && w->crowd_of[c] == -2) {
            for (Py_ssize_t t = 1; t < nt; t++)
                if (w->t_matched[t] == 2 && w->t_cat[t] == c && m[p * nt + t] > 0) return 1;
        } else if (crowd == CROWD_EOMT && w->crowd_of[c] >= 0) {
            covered += m[p * nt + w->crowd_of[c]];
        } else if (crowd == CROWD_LAST && w->crowd_last[c] >= 0) {
            covered += m[p * nt + w->crowd_last[c]];
        } else if (crowd == CROWD_ALL) {
            for (Py_ssize_t i = 0; i < nr; i++)
                if (w->crowd_list[i] >= 0 && w->t_cat[w->crowd_list[i]] == c) covered += m[p * nt + w->crowd_list[i]];
        }
        if (ratio(covered, w->p_area[p], f32) <= PB_IGNORED_SHARE) w->ev[ne++] = 1, w->ev[ne++] = c, w->ev[ne++] = 1;
    }
    for (Py_ssize_t k = 0; k < ne; k += 3) out[w->ev[k] * n + w->ev[k + 1]] += w->ev[k + 2];
    return 0;
}

static PyObject *py_quirk_sums(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *items, *seq = NULL, *left = NULL;
    Py_buffer bth, bq, bout;
    if (!PyArg_ParseTuple(args, "Oy*y*w*", &items, &bth, &bq, &bout)) return NULL;
    const Py_ssize_t n = bth.len, S = bq.len / (4 * QUIRK_FIELDS);
    Py_ssize_t m = 0, ok = 0;
    image *ims = NULL;
    Py_buffer *bufs = NULL;
    Py_ssize_t *bad = NULL, nbad = 0;
    work w;
    memset(&w, 0, sizeof(w));
    if (n == 0 || bq.len % (4 * QUIRK_FIELDS) || bout.len != S * 4 * n * 8) {
        PyErr_SetString(PyExc_ValueError, "quirk_sums: one byte a category (one or more), codes of 8 int32 a state, "
                                          "out of states x 4 x categories int64");
        goto done;
    }
    if (!(seq = PySequence_Fast(items, "quirk_sums: items must be a sequence"))) goto done;
    m = PySequence_Fast_GET_SIZE(seq);
    ims = calloc((size_t)m + 1, sizeof(image));
    bufs = calloc((size_t)(6 * m) + 1, sizeof(Py_buffer));
    bad = malloc((size_t)(2 * m * S + 1) * sizeof(Py_ssize_t));
    if (!ims || !bufs || !bad) {
        PyErr_NoMemory();
        goto done;
    }
    for (; ok < m; ok++) {
        Py_buffer *b = bufs + 6 * ok;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, ok), "y*y*y*y*y*y*", b, b + 1, b + 2, b + 3, b + 4,
                              b + 5))
            goto done;
        image *im = ims + ok;
        im->G = b[2].len / 8, im->P = b[5].len / 8;
        im->inter = b[0].buf, im->gid = b[1].buf, im->gcat = b[2].buf, im->garea = b[3].buf;
        im->gcrowd = b[4].buf, im->pcat = b[5].buf;
        int sized = b[0].len == (im->G + 2) * (im->P + 1) * 8 && b[1].len == im->G * 8 && b[3].len == im->G * 8 &&
                    b[4].len == im->G && b[2].len % 8 == 0 && b[5].len % 8 == 0;
        for (Py_ssize_t k = 0; sized && k < im->G; k++) sized = im->gcat[k] >= 0 && im->gcat[k] < n;
        for (Py_ssize_t k = 0; sized && k < im->P; k++) sized = im->pcat[k] >= 0 && im->pcat[k] < n;
        if (!sized) {
            PyErr_Format(PyExc_ValueError, "quirk_sums: item %zd: an (n_gt + 2) x (n_pred + 1) int64 table, int64 "
                         "ids, categories below %zd and areas, one byte per crowd flag", ok, n);
            ok++;
            goto done;
        }
    }
    int nomem = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < m && !nomem; i++) {
        if (work_size(&w, ims[i].G, ims[i].P, n)) {
            nomem = 1;
            break;
        }
        for (Py_ssize_t s = 0; s < S; s++) {
            int r = image_state(ims + i, bth.buf, n, (const int32_t *)bq.buf + s * QUIRK_FIELDS, &w,
                                (int64_t *)bout.buf + s * 4 * n);
            if (r == 1) bad[nbad++] = i, bad[nbad++] = s;
        }
    }
    Py_END_ALLOW_THREADS
    if (nomem) {
        PyErr_NoMemory();
        goto done;
    }
    if (!(left = PyList_New(0))) goto done;
    for (Py_ssize_t k = 0; k < nbad; k += 2) {
        PyObject *pair = Py_BuildValue("(nn)", bad[k], bad[k + 1]);
        if (!pair || PyList_Append(left, pair)) {
            Py_XDECREF(pair);
            Py_CLEAR(left);
            goto done;
        }
        Py_DECREF(pair);
    }
done:
    for (Py_ssize_t k = 0; k < 6 * ok; k++)
        if (bufs[k].obj) PyBuffer_Release(bufs + k);
    free(ims), free(bufs), free(bad);
    work_free(&w);
    Py_XDECREF(seq);
    PyBuffer_Release(&bth), PyBuffer_Release(&bq), PyBuffer_Release(&bout);
    return left;
}

static PyMethodDef methods[] = {
    {"quirk_sums", py_quirk_sums, METH_VARARGS, "Items' sums under each quirk state (module docstring)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rules", "PQ under other implementations' rules, in C.",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__rules(void) { return PyModule_Create(&module); }
