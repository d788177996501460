// A CPU without AVX-512 and VNNI, as far as CPUID tells: an LD_PRELOAD library that turns on the kernel's
// CPUID faulting (arch_prctl ARCH_SET_CPUID; lscpu lists "cpuid_fault" where it exists) and answers each
// CPUID from a SIGSEGV handler with the AVX-512, VNNI and AMX bits cleared. ONNX Runtime's MLAS picks its
// kernels from CPUID once, so under it an AVX-512 VNNI machine runs the AVX2 kernels of an AVX2-only CPU
// (u8·s8 products added pairwise in a saturating int16, VPMADDUBSW) at native speed; with CPUID_KEEP_AVX512=1
// only VNNI and AMX are hidden, which selects the kernels of an AVX-512 CPU without VNNI (Skylake-SP). What
// it does not change: code that chose before it loaded (glibc's string functions) and /proc/cpuinfo.
//
//   gcc -O2 -shared -fPIC -o /tmp/cpuid_avx2.so bench/cpuid_avx2.c
//   LD_PRELOAD=/tmp/cpuid_avx2.so deno task bench quantize runs/<run>
//
// with `deno` the deno@2.9.6 binary itself (npx --yes deno@2.9.6 eval 'console.log(Deno.execPath())'), not
// npx: node, which npx is, crashes under it (its own SIGSEGV handler takes the CPUID faults).
//
// Used to measure the int8 exports on AVX2 kernels (BENCHMARKS.md "Reduced precision (export)"); a
// faithful check of accuracy, and of the kernels' relative cost, not of an AVX2 CPU's absolute speed.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <asm/prctl.h>

static long arch_prctl(int code, unsigned long arg) { return syscall(SYS_arch_prctl, code, arg); }
static volatile long trapped = 0;
static int keep_avx512 = 0;  // CPUID_KEEP_AVX512=1: hide VNNI and AMX only (an AVX-512 CPU without VNNI)

static void on_segv(int sig, siginfo_t *info, void *ctx) {
  (void)sig;
  (void)info;
  ucontext_t *uc = ctx;
  greg_t *r = uc->uc_mcontext.gregs;
  const uint8_t *ip = (const uint8_t *)r[REG_RIP];
  if (ip[0] != 0x0f || ip[1] != 0xa2) {  // not CPUID: the default action
    signal(SIGSEGV, SIG_DFL);
    return;
  }
  uint32_t leaf = (uint32_t)r[REG_RAX], sub = (uint32_t)r[REG_RCX], a, b, c, d;
  arch_prctl(ARCH_SET_CPUID, 1);
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(sub));
  arch_prctl(ARCH_SET_CPUID, 0);
  if (leaf == 7 && sub == 0) {
    if (!keep_avx512) {
      // EBX: avx512f 16, dq 17, ifma 21, pf 26, er 27, cd 28, bw 30, vl 31
      b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
      // ECX: vbmi 1, vbmi2 6, bitalg 12, vpopcntdq 14
      c &= ~((1u << 1) | (1u << 6) | (1u << 12) | (1u << 14));
    }
    c &= ~(1u << 11);  // ECX: avx512-vnni
    // EDX: 4vnniw 2, 4fmaps 3, vp2intersect 8, amx-bf16 22, avx512-fp16 23, amx-tile 24, amx-int8 25
    d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
  } else if (leaf == 7 && sub == 1) {
    a &= ~((1u << 4) | (1u << 5));  // avx-vnni, avx512-bf16
    d &= ~((1u << 4) | (1u << 5));  // avx-vnni-int8, avx-ne-convert
  }
  r[REG_RAX] = a; r[REG_RBX] = b; r[REG_RCX] = c; r[REG_RDX] = d;
  r[REG_RIP] += 2;
  trapped++;
}

__attribute__((constructor)) static void init(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  keep_avx512 = getenv("CPUID_KEEP_AVX512") != NULL;
  sigaction(SIGSEGV, &sa, NULL);
  if (arch_prctl(ARCH_SET_CPUID, 0) != 0) {
    perror("cpuid_avx2: ARCH_SET_CPUID");
    exit(2);
  }
  if (getenv("CPUID_AVX2_VERBOSE")) {
    fprintf(stderr, "cpuid_avx2: CPUID faulting on, %s hidden\n", keep_avx512 ? "VNNI" : "AVX-512 and VNNI");
  }
}

__attribute__((destructor)) static void fini(void) {
  if (getenv("CPUID_AVX2_VERBOSE")) fprintf(stderr, "cpuid_avx2: %ld CPUID instructions answered\n", trapped);
}
