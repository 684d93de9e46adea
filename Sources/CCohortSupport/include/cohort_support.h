#ifndef COHORT_SUPPORT_H
#define COHORT_SUPPORT_H
/* Ctrl-C. A SIGINT handler counts interrupts; the line editor's getc turns a pending interrupt into
   ^U, so Ctrl-C at the prompt clears the line; while a command runs, the shell sees the count change
   and cancels the command. One definition of the state lives in support.c. */
void cohort_install_sigint(void);
long cohort_sigint_total(void);
void cohort_sigint_clear_editor(void);
/* Makes libedit read keys through cohort's interruptible getc (call before rl_initialize). */
void cohort_use_interruptible_getc(void);
/* Memory returned when it is freed (issue 12): glibc keeps freed blocks of a dynamic size (its mmap threshold
   grows to 32 MB after a large free) in per-thread arenas, so the process keeps its peak heap. Fixes the mmap
   threshold at 128 KiB (large buffers are mapped and unmapped), trims the heap top above 256 KiB, and caps the
   arenas at 2. A MALLOC_* environment variable or GLIBC_TUNABLES set by the user wins. No-op off glibc. */
void cohort_tune_allocator(void);
#endif
