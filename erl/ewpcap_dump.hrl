%%% The parsed command line of ewpcap_dump, shared by ewpcap_dump (which
%%% runs it), ewpcap_dump_args (which makes it) and ewpcap_dump_out (which
%%% opens the output it asks for). Private to those three.

-define(PROG, "ewpcap_dump").
-define(MAX_SNAPLEN, 262144).

-record(opts, {   % see ewpcap_dump(1) for each flag
    node :: node() | undefined,
    dev :: string() | undefined,
    ifaces = [] :: [{node() | undefined, string()}], % several -i: each NODE:DEV (ewpcap_dump_multi)
    order = [] :: [{n, node()} | {i, string()}],     % -N and -i as given, last first
    merge_window = 500 :: non_neg_integer(),         % --merge-window MS
    list = false :: boolean(),
    count = infinity :: pos_integer() | infinity,
    snaplen = ?MAX_SNAPLEN :: pos_integer(),
    promisc = true :: boolean(),
    buffer :: pos_integer() | undefined,
    immediate = false :: boolean(),
    write :: string() | undefined,
    pcapng = false :: boolean(),
    precision = micro :: micro | nano,
    read :: string() | undefined,
    numeric = false :: boolean(),
    absolute = false :: boolean(),
    verbose = 0 :: non_neg_integer(),
    eflag = false :: boolean(),
    xflag = 0 :: non_neg_integer(),
    xflag_ascii = 0 :: non_neg_integer(),
    cookie :: atom() | undefined,
    unbuffered = false :: boolean(),
    filter = <<>> :: binary(),
    help = false :: boolean(),
    version = false :: boolean()
}).
