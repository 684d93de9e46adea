#ifndef COHORT_CLIBEDIT_SHIM_H
#define COHORT_CLIBEDIT_SHIM_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <locale.h>
#include <langinfo.h>
#include <signal.h>
#include <editline/readline.h>
#include <histedit.h>

/* rl_bind_key for Ctrl-R reverse search: libedit's readline layer binds ^R to
   em-inc-search-prev by default in emacs mode; this helper makes it explicit. */
static inline int cohort_bind_reverse_search(void) {
  return rl_parse_and_bind("bind ^R em-inc-search-prev");
}
#endif
