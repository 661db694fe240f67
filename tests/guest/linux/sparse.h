/*
 * A symmetric sparse matrix, or an undirected graph, in compressed rows,
 * built from a list of pairs: the graph of bfs.c and the matrix of cg.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SPARSE_H
#define SPARSE_H

#include <stdint.h>

/*
 * Row i holds the columns col[start[i]] .. col[start[i + 1] - 1] and, for
 * a matrix, their values val[...]; start has n + 1 entries.
 */
struct sparse {
    uint64_t n;
    uint64_t *start;
    uint32_t *col;
    double *val;
};

/* The entries that the compressed rows of M pairs need at most. */
static inline uint64_t sparse_max_entries(uint64_t m)
{
    return 2 * m;
}

/*
 * Fill A (n, start, col and, if W, val already allocated: n + 1 and
 * sparse_max_entries(M) entries) with both directions of each of the M
 * pairs PAIRS[k] = {i, j}, i != j, of value W[k] if W is not NULL; a pair
 * with i == j is left out.  Duplicate pairs stay, as separate entries.
 */
static inline void sparse_build(struct sparse *a, const uint32_t (*pairs)[2],
                                const double *w, uint64_t m)
{
    uint64_t *start = a->start;

    for (uint64_t i = 0; i <= a->n; i++) {
        start[i] = 0;
    }
    for (uint64_t k = 0; k < m; k++) {
        if (pairs[k][0] != pairs[k][1]) {
            start[pairs[k][0] + 1]++;
            start[pairs[k][1] + 1]++;
        }
    }
    for (uint64_t i = 0; i < a->n; i++) {
        start[i + 1] += start[i];
    }
    /* start[i] is where row i's next entry goes; afterwards, its end. */
    for (uint64_t k = 0; k < m; k++) {
        for (int d = 0; d < 2 && pairs[k][0] != pairs[k][1]; d++) {
            uint64_t e = start[pairs[k][d]]++;

            a->col[e] = pairs[k][!d];
            if (w) {
                a->val[e] = w[k];
            }
        }
    }
    for (uint64_t i = a->n; i > 0; i--) {
        start[i] = start[i - 1];
    }
    start[0] = 0;
}

#endif /* SPARSE_H */
