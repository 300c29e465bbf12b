/* The per-image match of panbench.pq.matching (match_image), the area checks and the semantic fold of one
 * intersection table, in C without Python objects: _match.c wraps them for Python, _native.c runs them on its
 * threads (pair_tables, the GIL released).
 *
 * inter is the (G + 2) x (P + 1) int64 intersection table of panbench.pq (row/column 0 = VOID, row G + 1 the
 * ground-truth pixels whose id is in no segment); cats and areas are int64, crowd one byte per ground truth, the
 * predictions' scores float64 (NaN: none; no array: all NaN).
 * An image's result has one layout, a "res" (int64 words), wherever C writes it (_match.match for the per-image
 * path, _native.c's match_one for the batch path), and one decoder (matching.py's res_fields) turns it into the
 * ImageMatch fields and columns:
 *   header [PB_RES_HEADER]: n_tp, n_fn, n_fp, n_nc, m (fold rows), unlisted pixels, b_tp, b_fn, b_fp, used words
 *   then (the batch path only) the predictions' areas [P], then each field right after the one before:
 *   ints   (int64):   tp_cats, tp_area [n_tp], fn_cats, fn_area [n_fn], fp_cats, fp_area [n_fp], gt_cats [n_nc]
 *   floats (float64): tp_ious [n_tp], fn_same, fn_other, fn_pair, fn_pair_other [n_fn], fp_same, fp_other
 *                     [n_fp], gt_iou_sum [n_nc], tp_score [n_tp], fp_score [n_fp]
 *   the semantic fold (int64): sem_gt, sem_pred, sem_px [m each]
 *   boundary PQ's contributions: b_tp_cats, b_tp_ious [b_tp], b_fn_cats [b_fn], b_fp_cats [b_fp]
 *   bools  (bool):    fp_matched [n_fp bytes]
 * The numbers are bit-identical to the numpy path (tests/pq/test_match_native.py): the same IoU formula
 * (int64 -> double, one division), first-index argmax, and gt_iou_sum added in numpy's pairwise order
 * (pairwise_sum in numpy's loops_utils.h: 8 accumulators, blocks of 128).
 *
 * Boundary PQ (pb_btab: the boundary tables of _boundary_core.h's pass) matches the same table with each pair's
 * IoU min(mask IoU, boundary IoU), as panbench.pq.boundary.boundary_image_stats does in numpy; its contributions
 * (tp_cats, tp_ious, fn_cats, fp_cats) come from pb_match_write_stats.
 */
#ifndef PANBENCH_MATCH_CORE_H
#define PANBENCH_MATCH_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* The header of a res (the layout above) */
enum { PB_RES_TP, PB_RES_FN, PB_RES_FP, PB_RES_NC, PB_RES_FOLD, PB_RES_UNLISTED, PB_RES_BTP, PB_RES_BFN, PB_RES_BFP,
       PB_RES_USED, PB_RES_HEADER = 10 };

/* MATCH_IOU and IGNORED_SHARE of matching.py (tests/test_architecture_rules.py keeps them equal) */
#define PB_MATCH_IOU 0.5
#define PB_IGNORED_SHARE 0.5

/* numpy's float64 add.reduce over a contiguous row: its exact order of additions */
static double pairwise_sum(const double *a, Py_ssize_t n) {
    if (n < 8) {
        double res = 0.;
        for (Py_ssize_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        Py_ssize_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* Boundary PQ's tables of one image (pb_boundary_pass): bint (G + 2) x (P + 1), row 0 the predicted boundary
 * pixels on ground-truth VOID; bga (G + 2) and bpa (P + 1) the boundary areas, index 0 VOID */
typedef struct {
    const int64_t *bint, *bga, *bpa;
} pb_btab;

/* boundary_image_stats' boundary IoU of ground truth g and prediction p (0 where their boundaries do not meet) */
static inline double pb_boundary_iou(const pb_btab *b, Py_ssize_t g, Py_ssize_t p, Py_ssize_t cols) {
    const int64_t i = b->bint[(g + 1) * cols + 1 + p];
    if (i <= 0) return 0.0;
    const int64_t u = b->bpa[1 + p] + b->bga[1 + g] - i - b->bint[1 + p];
    return (double)i / (double)(u == 0 ? 1 : u);
}

typedef struct {
    /* per ground truth */
    double *best_same_g, *best_other_g, *iou_sum;
    Py_ssize_t *best_p_of_g;
    char *gt_matched;
    /* per prediction */
    double *best_same_p, *best_other_p, *row;
    Py_ssize_t *best_g_of_p;
    char *pred_matched;
    /* true positives (at most one per ground truth): ground truth, prediction, IoU */
    Py_ssize_t *tp_g, *tp_p;
    double *tp_iou;
    char *fp_flag; /* per prediction: a counted false positive */
} scratch;

/* the row pass: IoUs (with b, min(mask IoU, boundary IoU)), matches, best overlaps both ways; returns n_tp or -1
 * (two matches of one segment) */
static Py_ssize_t row_pass(const int64_t *inter, Py_ssize_t G, Py_ssize_t P, const int64_t *gc, const int64_t *ga,
                           const uint8_t *crowd, const int64_t *pc, const int64_t *pa, const pb_btab *b,
                           scratch *s) {
    const Py_ssize_t cols = P + 1;
    Py_ssize_t n_tp = 0;
    for (Py_ssize_t p = 0; p < P; p++) {
        s->best_same_p[p] = -1.0; /* first row always replaces it: the first-index argmax */
        s->best_other_p[p] = 0.0;
        s->best_g_of_p[p] = 0;
        s->pred_matched[p] = 0;
    }
    for (Py_ssize_t g = 0; g < G; g++) {
        const int64_t *in = inter + (g + 1) * cols + 1;
        double bs = 0.0, bo = 0.0;
        Py_ssize_t bp = 0;
        s->gt_matched[g] = 0;
        for (Py_ssize_t p = 0; p < P; p++) {
            int64_t i = in[p];
            double vs = 0.0, vo = 0.0;
            if (i > 0 && !crowd[g]) {
                int64_t u = pa[p] + ga[g] - i - inter[1 + p];
                double iou = (double)i / (double)(u == 0 ? 1 : u);
                if (b) {
                    const double bi = pb_boundary_iou(b, g, p, cols);
                    if (bi < iou) iou = bi; /* np.minimum */
                }
                if (gc[g] == pc[p]) vs = iou; else vo = iou;
            }
            s->row[p] = vs;
            if (p == 0 || vs > bs) { bs = vs; bp = p; }
            if (vo > bo) bo = vo;
            if (vs > s->best_same_p[p]) { s->best_same_p[p] = vs; s->best_g_of_p[p] = g; }
            if (vo > s->best_other_p[p]) s->best_other_p[p] = vo;
            if (vs > PB_MATCH_IOU) {
                if (s->gt_matched[g] || s->pred_matched[p]) return -1;
                s->gt_matched[g] = s->pred_matched[p] = 1;
                s->tp_g[n_tp] = g;
                s->tp_p[n_tp] = p;
                s->tp_iou[n_tp++] = vs;
            }
        }
        s->best_same_g[g] = bs;
        s->best_other_g[g] = bo;
        s->best_p_of_g[g] = bp;
        s->iou_sum[g] = P ? pairwise_sum(s->row, P) : 0.0;
    }
    if (G == 0)
        for (Py_ssize_t p = 0; p < P; p++) s->best_same_p[p] = 0.0;
    return n_tp;
}

/* more than half of the prediction on VOID or on its category's crowd (the last in JSON order) */
static int ignored(const int64_t *inter, Py_ssize_t G, Py_ssize_t P, const int64_t *gc, const uint8_t *crowd,
                   const int64_t *pc, const int64_t *pa, Py_ssize_t p) {
    const Py_ssize_t cols = P + 1;
    int64_t px = inter[1 + p];
    for (Py_ssize_t g = G - 1; g >= 0; g--)
        if (crowd[g] && gc[g] == pc[p]) {
            px += inter[(g + 1) * cols + 1 + p];
            break;
        }
    if (pa[p] == 0) return px > 0; /* numpy: px / 0 is inf (> 0.5) or nan (not) */
    return (double)px / (double)pa[p] > PB_IGNORED_SHARE;
}


/* the scratch of a match of G ground truths and P predictions, in one block (returned: free() it); NULL when
 * out of memory */
static void *pb_scratch_init(scratch *s, Py_ssize_t G, Py_ssize_t P) {
    const Py_ssize_t M = (G > P ? G : P) + 1;
    void *mem = malloc((size_t)M * (7 * sizeof(double) + 4 * sizeof(Py_ssize_t) + 3));
    if (!mem) return NULL;
    double *d = mem;
    s->best_same_g = d, s->best_other_g = d + M, s->iou_sum = d + 2 * M, s->best_same_p = d + 3 * M;
    s->best_other_p = d + 4 * M, s->row = d + 5 * M, s->tp_iou = d + 6 * M;
    Py_ssize_t *z = (Py_ssize_t *)(d + 7 * M);
    s->best_p_of_g = z, s->best_g_of_p = z + M, s->tp_g = z + 2 * M, s->tp_p = z + 3 * M;
    s->gt_matched = (char *)(z + 4 * M), s->pred_matched = s->gt_matched + M, s->fp_flag = s->pred_matched + M;
    return mem;
}

typedef struct {
    Py_ssize_t tp, fn, fp, nc; /* true positives, false negatives, counted false positives, non-crowd gt */
} pb_match_sizes;

/* The match of one table into s and its sizes (with b: boundary PQ's); returns 0, or -1: a ground truth or
 * prediction with two IoU > 0.5 matches, which a table counted from pixels cannot give (the numpy path handles
 * any table). */
static int pb_match(const int64_t *inter, Py_ssize_t G, Py_ssize_t P, const int64_t *gc, const int64_t *ga,
                    const uint8_t *crowd, const int64_t *pc, const int64_t *pa, const pb_btab *b, scratch *s,
                    pb_match_sizes *n) {
    Py_ssize_t n_tp = row_pass(inter, G, P, gc, ga, crowd, pc, pa, b, s);
    if (n_tp < 0) return -1;
    n->tp = n_tp, n->fn = n->fp = n->nc = 0;
    for (Py_ssize_t g = 0; g < G; g++) {
        n->nc += !crowd[g];
        n->fn += !crowd[g] && !s->gt_matched[g];
    }
    for (Py_ssize_t p = 0; p < P; p++) {
        s->fp_flag[p] = !s->pred_matched[p] && !ignored(inter, G, P, gc, crowd, pc, pa, p);
        n->fp += s->fp_flag[p];
    }
    return 0;
}

static inline Py_ssize_t pb_match_ints(const pb_match_sizes *n) { return 2 * n->tp + 2 * n->fn + 2 * n->fp + n->nc; }
static inline Py_ssize_t pb_match_floats(const pb_match_sizes *n) { return 2 * n->tp + 4 * n->fn + 3 * n->fp + n->nc; }

/* The match's fields of a res (the layout above), ints then floats, and fp_matched, of pb_match's s and sizes n;
 * ps: the predictions' scores (NULL: none, NaN) */
static void pb_match_write(const pb_match_sizes *n, Py_ssize_t G, Py_ssize_t P, const int64_t *gc,
                           const int64_t *ga, const uint8_t *crowd, const int64_t *pc, const int64_t *pa,
                           const double *ps, const scratch *s, int64_t *ints, double *floats, uint8_t *fp_matched) {
    const Py_ssize_t n_tp = n->tp, n_fn = n->fn, n_fp = n->fp;
    int64_t *tp_cats = ints, *tp_area = tp_cats + n_tp, *fn_cats = tp_area + n_tp, *fn_area = fn_cats + n_fn,
            *fp_cats = fn_area + n_fn, *fp_area = fp_cats + n_fp, *gt_cats = fp_area + n_fp;
    double *tp_ious = floats, *fn_same = tp_ious + n_tp, *fn_other = fn_same + n_fn, *fn_pair = fn_other + n_fn,
           *fn_pair_other = fn_pair + n_fn, *fp_same = fn_pair_other + n_fn, *fp_other = fp_same + n_fp,
           *gt_iou_sum = fp_other + n_fp, *tp_score = gt_iou_sum + n->nc, *fp_score = tp_score + n_tp;
    for (Py_ssize_t k = 0; k < n_tp; k++) {
        tp_cats[k] = gc[s->tp_g[k]];
        tp_area[k] = ga[s->tp_g[k]];
        tp_ious[k] = s->tp_iou[k];
        tp_score[k] = ps ? ps[s->tp_p[k]] : NAN;
    }
    Py_ssize_t f = 0, c = 0;
    for (Py_ssize_t g = 0; g < G; g++) {
        if (crowd[g]) continue;
        gt_cats[c] = gc[g];
        gt_iou_sum[c++] = s->iou_sum[g];
        if (s->gt_matched[g]) continue;
        double bs = s->best_same_g[g];
        Py_ssize_t p = s->best_p_of_g[g];
        fn_cats[f] = gc[g];
        fn_area[f] = ga[g];
        fn_same[f] = bs;
        fn_other[f] = s->best_other_g[g];
        int pair = P && bs > 0 && !s->pred_matched[p] && s->best_g_of_p[p] == g;
        fn_pair[f] = pair ? bs : 0.0;
        fn_pair_other[f++] = pair && s->fp_flag[p] ? s->best_other_p[p] : 0.0;
    }
    f = 0;
    for (Py_ssize_t p = 0; p < P; p++) {
        if (!s->fp_flag[p]) continue;
        fp_cats[f] = pc[p];
        fp_area[f] = pa[p];
        fp_same[f] = s->best_same_p[p];
        fp_other[f] = s->best_other_p[p];
        fp_score[f] = ps ? ps[p] : NAN;
        fp_matched[f++] = G && s->best_same_p[p] > 0 && s->gt_matched[s->best_g_of_p[p]];
    }
}

/* The PQ contributions of pb_match's s and sizes n (ImageMatch.to_stats: boundary PQ's): tp_cats and tp_ious
 * [n_tp], fn_cats [n_fn], fp_cats [n_fp], in pb_match_write's order */
static void pb_match_write_stats(const pb_match_sizes *n, Py_ssize_t G, Py_ssize_t P, const int64_t *gc,
                                 const uint8_t *crowd, const int64_t *pc, const scratch *s, int64_t *tp_cats,
                                 double *tp_ious, int64_t *fn_cats, int64_t *fp_cats) {
    for (Py_ssize_t k = 0; k < n->tp; k++) {
        tp_cats[k] = gc[s->tp_g[k]];
        tp_ious[k] = s->tp_iou[k];
    }
    Py_ssize_t f = 0;
    for (Py_ssize_t g = 0; g < G; g++)
        if (!crowd[g] && !s->gt_matched[g]) fn_cats[f++] = gc[g];
    f = 0;
    for (Py_ssize_t p = 0; p < P; p++)
        if (s->fp_flag[p]) fp_cats[f++] = pc[p];
}

/* The area checks of evaluator._check_areas: returns -1 when both pass (pa then holds the predictions'
 * pixel counts, columns 1..P over every row), else the index of the first ground truth whose pixels (row
 * g + 1, every column) exceed its JSON area (*side = 0) or of the first prediction with no pixel (*side = 1) */
static Py_ssize_t pb_areas(const int64_t *t, Py_ssize_t G, Py_ssize_t P, const int64_t *ga, int64_t *pa, int *side) {
    const Py_ssize_t cols = P + 1;
    for (Py_ssize_t g = 0; g < G; g++) {
        int64_t sum = 0;
        for (Py_ssize_t c = 0; c < cols; c++) sum += t[(g + 1) * cols + c];
        if (sum > ga[g]) {
            *side = 0;
            return g;
        }
    }
    memset(pa, 0, (size_t)P * 8);
    for (Py_ssize_t r = 0; r < G + 2; r++)
        for (Py_ssize_t c = 1; c < cols; c++) pa[c - 1] += t[r * cols + c];
    for (Py_ssize_t p = 0; p < P; p++)
        if (pa[p] == 0) {
            *side = 1;
            return p;
        }
    return -1;
}

/* matching.semantic_pairs and evaluator.unlisted_pixels of one table: the number m of non-zero cells of rows
 * 0..G (the fold's size) and, in *unlisted, the pixels of row G + 1 */
static Py_ssize_t pb_fold_size(const int64_t *t, Py_ssize_t G, Py_ssize_t P, int64_t *unlisted) {
    const Py_ssize_t cols = P + 1;
    Py_ssize_t m = 0;
    *unlisted = 0;
    for (Py_ssize_t i = 0; i < (G + 1) * cols; i++) m += t[i] != 0;
    for (Py_ssize_t c = 0; c < cols; c++) *unlisted += t[(G + 1) * cols + c];
    return m;
}

/* those m cells in row-major order as (ground-truth category, predicted category, pixels), VOID = -1: o[0:m],
 * o[m:2m], o[2m:3m] */
static void pb_fold_write(const int64_t *t, Py_ssize_t G, Py_ssize_t P, const int64_t *gc, const int64_t *pc,
                          Py_ssize_t m, int64_t *o) {
    const Py_ssize_t cols = P + 1;
    Py_ssize_t k = 0;
    for (Py_ssize_t r = 0; r <= G; r++)
        for (Py_ssize_t c = 0; c < cols; c++) {
            int64_t v = t[r * cols + c];
            if (!v) continue;
            o[k] = r ? gc[r - 1] : -1;
            o[m + k] = c ? pc[c - 1] : -1;
            o[2 * m + k++] = v;
        }
}

#endif
