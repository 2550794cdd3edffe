/* dist.c: the table of collectives in force (dist.h); none by default: one process, no MPI linked. */
#include "dist.h"

static const lmn_dist *current;

void lmn_dist_set(const lmn_dist *d) {
  current = d && d->size > 1 ? d : NULL;
}

const lmn_dist *lmn_dist_get(void) {
  return current;
}

int lmn_dist_rank(void) {
  return current ? current->rank : 0;
}

int lmn_dist_size(void) {
  return current ? current->size : 1;
}
