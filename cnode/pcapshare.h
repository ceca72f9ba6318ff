/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * A pcap_t shared by its capture, in the loop, and a compile worker.
 * Filters must be compiled against the live handle, not a dead one of the
 * same link type: libpcap generates different code for an activated Linux
 * handle (802.1Q tags are packet metadata there, and `vlan' reads them
 * with ancillary loads; against pcap_open_dead it looks for 0x8100 in the
 * bytes, which a live capture never sees, so `vlan 100' matches nothing).
 *
 * References are taken and dropped in the loop thread (the capture holds
 * one, each compile job one); borrow and give back from any thread. When
 * the capture is done with the pcap_t (ewp_pcapshare_close) it is closed
 * at once, or, while a worker compiles with it, by that worker when it
 * gives it back: a closed handle's pcap_t lingers for one running compile
 * at most, never for queued ones (they find it closed and compile
 * nothing). pcap_compile reads the handle's link type, snapshot and
 * codegen flags, which never change after activation; it writes only the
 * handle's errbuf, on error, which the worker copies at once.
 */
#ifndef EWP_PCAPSHARE_H
#define EWP_PCAPSHARE_H

#include <pcap/pcap.h>

struct ewp_pcapshare;

struct ewp_pcapshare *ewp_pcapshare_new(pcap_t *p);
struct ewp_pcapshare *ewp_pcapshare_ref(struct ewp_pcapshare *s);
void ewp_pcapshare_unref(struct ewp_pcapshare *s);
void ewp_pcapshare_close(struct ewp_pcapshare *s);
pcap_t *ewp_pcapshare_borrow(struct ewp_pcapshare *s);
void ewp_pcapshare_giveback(struct ewp_pcapshare *s);

#endif /* EWP_PCAPSHARE_H */
