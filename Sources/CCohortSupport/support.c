#include "cohort_support.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <editline/readline.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static volatile sig_atomic_t sigint_count = 0;
static volatile sig_atomic_t sigint_pending_for_editor = 0;

static void sigint_handler(int sig) {
  (void)sig;
  sigint_count++;
  sigint_pending_for_editor = 1;
}

void cohort_install_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = sigint_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
}

long cohort_sigint_total(void) { return (long)sigint_count; }
void cohort_sigint_clear_editor(void) { sigint_pending_for_editor = 0; }

static int interruptible_getc(FILE *stream) {
  (void)stream;
  unsigned char c;
  for (;;) {
    /* The signal may land on any thread, so never rely on EINTR: wait in short slices. */
    if (sigint_pending_for_editor) {
      sigint_pending_for_editor = 0;
      return 0x15; /* ^U: kill the whole line */
    }
    struct pollfd pfd = {.fd = 0, .events = POLLIN, .revents = 0};
    int ready = poll(&pfd, 1, 100);
    if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
    if (ready < 0) return EOF;
    if (sigint_pending_for_editor) continue; /* Ctrl-C first, then what was typed after it */
    ssize_t n = read(0, &c, 1);
    if (n == 1) return c;
    if (n == 0) return EOF;
    if (errno == EINTR || errno == EAGAIN) continue;
    return EOF;
  }
}

void cohort_use_interruptible_getc(void) { rl_getc_function = interruptible_getc; }

void cohort_tune_allocator(void) {
#if defined(__GLIBC__)
  if (getenv("GLIBC_TUNABLES") != NULL) return;
  if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  if (getenv("MALLOC_TRIM_THRESHOLD_") == NULL) mallopt(M_TRIM_THRESHOLD, 256 * 1024);
  if (getenv("MALLOC_ARENA_MAX") == NULL) mallopt(M_ARENA_MAX, 2);
#endif
}
