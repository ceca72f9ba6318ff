/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * Which members of a shared capture want a packet. Each member has its own
 * BPF program (pcap_compile's output for its filter), run here in the
 * daemon with the result pcap_offline_filter would give: a member is in
 * the answer exactly when its program returns non-zero for the packet.
 * Knows nothing of handles or captures: a member is the caller's pointer.
 * Not thread safe: the loop thread only.
 */
#ifndef EWP_DEMUX_H
#define EWP_DEMUX_H

#include <stddef.h>

#include <pcap/pcap.h>

struct ewp_demux;

struct ewp_demux *ewp_demux_new(void);
void ewp_demux_free(struct ewp_demux *d);

/* Adds member with a copy of prog, or gives it that program if it is one
 * already. NULL or bf_len 0: every packet. 0, or -1 with errno (ENOMEM;
 * EINVAL: a program bpf_validate refuses), the member as it was. */
int ewp_demux_set(struct ewp_demux *d, void *member, const struct bpf_program *prog);

/* Takes member out (nothing when it is not in) */
void ewp_demux_remove(struct ewp_demux *d, void *member);

/* How many members */
size_t ewp_demux_count(const struct ewp_demux *d);

/* The members whose program accepts the packet, written to out (room for
 * ewp_demux_count(d) pointers), each once, in no promised order; returns
 * how many */
size_t ewp_demux_match(struct ewp_demux *d, const struct pcap_pkthdr *h,
                       const unsigned char *pkt, void **out);

/* Whether prog jumps backward (protochain): the kernel refuses such a
 * program, and libpcap's own interpreter may never end on one */
int ewp_demux_loops(const struct bpf_program *prog);

/* prog (one bpf_validate takes) on one packet with a bound of steps
 * (demux_loop.c): non-zero when it accepts */
int ewp_demux_run_one(const struct bpf_program *prog, const struct pcap_pkthdr *h,
                      const unsigned char *pkt);

#endif /* EWP_DEMUX_H */
