/* The scan of a COCO panoptic JSON document that _match.scan runs (included by _match.c).
 *
 * It walks the document's structure, and in the one "annotations" array of the top-level object reads each
 * annotation's "segments_info" array in full: every byte of it checked against JSON's grammar, and of each
 * segment the integer fields scoring reads (id, category_id, area, iscrowd) kept as int64, and where its "score"
 * is a number, where that number starts (_match.c's scan_result reads it as json.loads does, with the GIL).  An
 * array whose segments all have them as plain integers (and, in predictions, a score absent or a number) is cut
 * out of the text (replaced by []), so that Python's json parses only the rest; any other array stays in the
 * text, which json.loads parses.
 *
 * What the scan does not take on it leaves to json.load, whole: a document whose top level is not an object, an
 * "annotations" key written twice, an annotation that is not an object or has no (or two) "segments_info", a
 * key written with an escape where the scan compares keys, and inside an array it reads: a byte above 0x7f, a
 * control byte in a string, NaN or Infinity, nesting deeper than PB_JSON_DEPTH, or anything json.load refuses.
 * Outside those arrays the scan only finds the ends of strings and values; json.loads checks the text it is
 * given.  A valid JSON array and [] are each one value wherever they stand, so the text with the arrays cut out
 * parses exactly when the document does, to the same objects save those arrays, and each array is what
 * json.loads of its own bytes gives.
 */
#include <stdint.h>
#include <string.h>

#define PB_JSON_DEPTH 64

typedef struct {
    const unsigned char *p, *end;
} pb_cur;

/* one segment's fields as the scan reads them */
enum { PB_ABSENT = 0, PB_INT = 1, PB_OTHER = 2, PB_NUMBER = 3 };
enum { PB_NFIELDS = 5, PB_SCORE = 4 };
typedef struct {
    /* id, category_id, area, iscrowd, score: PB_ABSENT, PB_INT (a score: PB_NUMBER) or PB_OTHER (the last value
     * written wins) */
    int state[PB_NFIELDS];
    int64_t v[PB_NFIELDS]; /* a score: the offset of its number in the document */
} pb_seg;

static void pb_ws(pb_cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* the end of a string outside the arrays the scan reads (c->p at its '"'): 0, or -1 where it does not end.
 * *escaped: whether it holds a backslash. */
static int pb_skip_string(pb_cur *c, int *escaped) {
    c->p++;
    *escaped = 0;
    while (c->p < c->end) {
        unsigned char ch = *c->p++;
        if (ch == '"') return 0;
        if (ch == '\\') {
            *escaped = 1;
            if (c->p >= c->end) return -1;
            c->p++;
        }
    }
    return -1;
}

/* the end of any value outside the arrays the scan reads: strings skipped, brackets counted; json.loads checks
 * the rest.  0, or -1 where it does not end. */
static int pb_skip_value(pb_cur *c) {
    int esc;
    if (c->p >= c->end) return -1;
    if (*c->p == '"') return pb_skip_string(c, &esc);
    if (*c->p != '{' && *c->p != '[') {
        while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' && *c->p != ' ' && *c->p != '\t' &&
               *c->p != '\n' && *c->p != '\r')
            c->p++;
        return 0;
    }
    Py_ssize_t depth = 0;
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            if (pb_skip_string(c, &esc)) return -1;
            continue;
        }
        c->p++;
        if (ch == '{' || ch == '[') depth++;
        else if ((ch == '}' || ch == ']') && --depth == 0) return 0;
    }
    return -1;
}

/* a string inside an array the scan reads, checked as json.loads checks it (escapes, no control byte), ASCII
 * only: 0, -1 otherwise.  [*s, *e) its raw bytes; *escaped whether it holds a backslash. */
static int pb_string(pb_cur *c, const unsigned char **s, const unsigned char **e, int *escaped) {
    c->p++;
    *s = c->p;
    *escaped = 0;
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            *e = c->p++;
            return 0;
        }
        if (ch < 0x20 || ch > 0x7f) return -1;
        c->p++;
        if (ch == '\\') {
            *escaped = 1;
            if (c->p >= c->end) return -1;
            ch = *c->p++;
            if (ch == 'u') {
                for (int k = 0; k < 4; k++, c->p++)
                    if (c->p >= c->end || !((*c->p >= '0' && *c->p <= '9') || ((*c->p | 0x20) >= 'a' &&
                                                                              (*c->p | 0x20) <= 'f')))
                        return -1;
            } else if (!strchr("\"\\/bfnrt", ch) || ch == 0) {
                return -1;
            }
        }
    }
    return -1;
}

/* a number (JSON's grammar, which is json.loads' too): 0 with *v set for an integer of at most 18 digits, 1 for
 * a fraction or an exponent, -1 for no number or an integer of more digits (json.loads refuses one past
 * sys.get_int_max_str_digits(): the scan leaves it to json.load). */
static int pb_number(pb_cur *c, int64_t *v) {
    const unsigned char *p = c->p, *e = c->end;
    int neg = 0, other = 0;
    Py_ssize_t digits = 0;
    int64_t x = 0;
    if (p < e && *p == '-') neg = 1, p++;
    if (p >= e || *p < '0' || *p > '9') return -1;
    if (*p == '0') {
        p++, digits = 1;
    } else {
        for (; p < e && *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 18) x = 10 * x + (*p - '0');
    }
    if (p < e && *p == '.') {
        p++, other = 1;
        if (p >= e || *p < '0' || *p > '9') return -1;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++, other = 1;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return -1;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (!other && digits > 18) return -1;
    c->p = p;
    if (other) return 1;
    *v = neg ? -x : x;
    return 0;
}

static int pb_literal(pb_cur *c, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n)) return -1;
    c->p += n;
    return 0;
}

/* any value inside an array the scan reads, checked: 0, or -1 (invalid, or what the scan leaves to json.load) */
static int pb_value(pb_cur *c, int depth) {
    const unsigned char *s, *e;
    int esc;
    int64_t v;
    if (c->p >= c->end || depth > PB_JSON_DEPTH) return -1;
    switch (*c->p) {
    case '"':
        return pb_string(c, &s, &e, &esc);
    case 't':
        return pb_literal(c, "true");
    case 'f':
        return pb_literal(c, "false");
    case 'n':
        return pb_literal(c, "null");
    case '[':
        c->p++;
        pb_ws(c);
        if (c->p < c->end && *c->p == ']') return c->p++, 0;
        for (;;) {
            pb_ws(c);
            if (pb_value(c, depth + 1)) return -1;
            pb_ws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == ']') return c->p++, 0;
            if (*c->p++ != ',') return -1;
        }
    case '{':
        c->p++;
        pb_ws(c);
        if (c->p < c->end && *c->p == '}') return c->p++, 0;
        for (;;) {
            pb_ws(c);
            if (c->p >= c->end || *c->p != '"' || pb_string(c, &s, &e, &esc)) return -1;
            pb_ws(c);
            if (c->p >= c->end || *c->p++ != ':') return -1;
            pb_ws(c);
            if (pb_value(c, depth + 1)) return -1;
            pb_ws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == '}') return c->p++, 0;
            if (*c->p++ != ',') return -1;
        }
    default:
        return pb_number(c, &v) < 0 ? -1 : 0;
    }
}

static const char *const PB_FIELDS[PB_NFIELDS] = {"id", "category_id", "area", "iscrowd", "score"};

/* one element of a segments_info array (base: the document's first byte): an object's fields into *g (all
 * PB_OTHER for an element that is not an object); 0, or -1 as pb_value */
static int pb_segment(pb_cur *c, const unsigned char *base, pb_seg *g) {
    const unsigned char *s, *e;
    int esc;
    memset(g, 0, sizeof *g);
    if (c->p >= c->end || *c->p != '{') {
        for (int f = 0; f < PB_NFIELDS; f++) g->state[f] = PB_OTHER;
        return pb_value(c, 1);
    }
    c->p++;
    pb_ws(c);
    if (c->p < c->end && *c->p == '}') return c->p++, 0;
    for (;;) {
        pb_ws(c);
        if (c->p >= c->end || *c->p != '"' || pb_string(c, &s, &e, &esc) || esc) return -1; /* keys as written */
        pb_ws(c);
        if (c->p >= c->end || *c->p++ != ':') return -1;
        pb_ws(c);
        int f = 0;
        while (f < PB_NFIELDS &&
               !((size_t)(e - s) == strlen(PB_FIELDS[f]) && !memcmp(s, PB_FIELDS[f], (size_t)(e - s))))
            f++;
        if (f < PB_NFIELDS && c->p < c->end && (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))) {
            const int64_t at = c->p - base;
            int r = pb_number(c, &g->v[f]);
            if (r < 0) return -1;
            if (f == PB_SCORE) {
                g->state[f] = PB_NUMBER;
                g->v[f] = at;
            } else {
                g->state[f] = r == 0 ? PB_INT : PB_OTHER;
            }
        } else {
            if (pb_value(c, 2)) return -1;
            if (f < PB_NFIELDS) g->state[f] = PB_OTHER;
        }
        pb_ws(c);
        if (c->p >= c->end) return -1;
        if (*c->p == '}') return c->p++, 0;
        if (*c->p++ != ',') return -1;
    }
}

/* a growable int64 buffer */
typedef struct {
    int64_t *a;
    Py_ssize_t n, cap;
} pb_vec;

static int pb_push(pb_vec *b, int64_t x) {
    if (b->n == b->cap) {
        Py_ssize_t cap = b->cap ? 2 * b->cap : 256;
        int64_t *a = realloc(b->a, (size_t)cap * 8);
        if (!a) return -1;
        b->a = a, b->cap = cap;
    }
    b->a[b->n++] = x;
    return 0;
}

/* a segments_info array (c->p at its '['; base: the document's first byte): 1 when every element is a segment with
 * plain integers where scoring reads them (id and category_id, area with gt, iscrowd absent or an integer) and,
 * without gt, a score absent or a number, its fields appended to *out as id, category_id, area (0 when absent),
 * crowd (iscrowd == 1), score (its number's offset in the document; -1 when absent or with gt) per segment; 0 for
 * another valid array; -1 as pb_value.  *n: its elements. */
static int pb_segments(pb_cur *c, const unsigned char *base, int gt, pb_vec *out, Py_ssize_t *n) {
    int plain = 1;
    pb_seg g;
    *n = 0;
    c->p++;
    pb_ws(c);
    if (c->p < c->end && *c->p == ']') return c->p++, 1;
    for (;;) {
        pb_ws(c);
        if (pb_segment(c, base, &g)) return -1;
        ++*n;
        if (plain) {
            plain = g.state[0] == PB_INT && g.state[1] == PB_INT && (gt ? g.state[2] == PB_INT : g.state[2] != PB_OTHER)
                    && g.state[3] != PB_OTHER && (gt || g.state[PB_SCORE] != PB_OTHER);
            if (plain && (pb_push(out, g.v[0]) || pb_push(out, g.v[1]) ||
                          pb_push(out, g.state[2] == PB_INT ? g.v[2] : 0) ||
                          pb_push(out, g.state[3] == PB_INT && g.v[3] == 1) ||
                          pb_push(out, !gt && g.state[PB_SCORE] == PB_NUMBER ? g.v[PB_SCORE] : -1)))
                return -2;
        }
        pb_ws(c);
        if (c->p >= c->end) return -1;
        if (*c->p == ']') return c->p++, plain;
        if (*c->p++ != ',') return -1;
    }
}

static int pb_key_is(const unsigned char *s, const unsigned char *e, const char *key) {
    return (size_t)(e - s) == strlen(key) && !memcmp(s, key, (size_t)(e - s));
}
