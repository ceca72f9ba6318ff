%%% The printer state of ewpcap_dump_fmt and ewpcap_dump_fmt_ip: private
%%% to those two modules.

-record(printer, {
    absolute = false :: boolean(),    % -S: absolute TCP sequence numbers
    verbose = 0 :: non_neg_integer(), % -v
    eflag = false :: boolean(),       % -e: the link-level header
    hex = none :: none | x | xx | 'X' | 'XX', % -x, -xx, -X, -XX
    precision = micro :: micro | nano, % the unit of the time stamps (--nano)
    names :: ewpcap_dump_names:names(),
    numeric = false :: boolean(),     % -n (also known to names)
    tcp = #{} :: #{term() => {non_neg_integer(), non_neg_integer()}},
    ll = 0 :: non_neg_integer(),      % the link-level header's length
    csum_dst = none :: none | inet:ip_address(), % the destination of the pseudo-header
                                      % when a source route's last address is (tcpdump's finddst)
    ip_proto = 0 :: byte(),           % the innermost IP header's protocol (or first
                                      % next header): TCP and UDP under another print bare ports
    out = [] :: iodata()              % the text of the packet so far
}).

%% A printer ran past the captured bytes: tcpdump's longjmp, which
%% ends the packet with " [|Proto]".
-define(TRUNC(Proto, P), throw({ewp_trunc, Proto, P})).

%% The same marker where tcpdump checks and returns (no longjmp): -x and
%% -X then still skip the link-level header.
-define(TRUNC_RET(Proto, P), ewpcap_dump_fmt_ip:pr(P, [" [|", Proto, "]"])).
