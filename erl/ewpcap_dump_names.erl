%%% @doc Host and service names for ewpcap_dump's lines: caches, and the
%%% reverse DNS lookups, kept off the packet path.
%%%
%%% A host name is looked up once per address (`inet:gethostbyaddr/2',
%%% 2 s at most). In `async' mode (live captures) the lookup runs in a
%%% process of its own, the address is printed until the answer comes,
%%% and the answer arrives in the caller's mailbox as
%%% `{ewpcap_dump_names, IP, Name}' for resolved/3; at most 64 lookups run
%%% at once (an address met while they all run is looked up later). In
%%% `sync' mode (reading a savefile, where no packet waits and the text
%%% must not depend on timing) the lookup is made on the spot, as tcpdump
%%% does. Service names come from `inet:getservbyport/2'
%%% (`/etc/services'), cached. With `numeric' (`-n'), nothing is looked up.
%%% @end
-module(ewpcap_dump_names).

-export([new/2, host/2, port/3, resolved/3, numeric/1]).

-export_type([names/0]).

-define(LOOKUP_MS, 2000).
-define(MAX_PENDING, 64).

-record(names, {
    numeric = false :: boolean(),   % -n: no names at all
    mode = sync :: sync | async,    % where lookups run
    hosts = #{} :: #{inet:ip_address() => string() | pending},
    pending = 0 :: non_neg_integer(), % async lookups running
    services = #{} :: #{{tcp | udp, 0..65535} => string()}
}).

-opaque names() :: #names{}.

%%% ===================================================================
%%% API
%%% ===================================================================

%% @doc Empty caches.
-spec new(Numeric :: boolean(), sync | async) -> names().
new(Numeric, Mode) ->
    #names{numeric = Numeric, mode = Mode}.

%% @doc Whether names are off (-n).
-spec numeric(names()) -> boolean().
numeric(#names{numeric = Numeric}) ->
    Numeric.

%% @doc The name of an address (its text while unknown).
-spec host(inet:ip_address(), names()) -> {string(), names()}.

host(IP, #names{numeric = true} = N) ->
    {inet:ntoa(IP), N};
host(IP, #names{hosts = H} = N) ->
    case H of
        #{IP := pending} ->
            {inet:ntoa(IP), N};
        #{IP := Name} ->
            {Name, N};
        _ when N#names.mode =:= sync ->
            Name = lookup(IP),
            {Name, N#names{hosts = H#{IP => Name}}};
        _ when N#names.pending >= ?MAX_PENDING ->
            {inet:ntoa(IP), N};
        _ ->
            Self = self(),
            _ = spawn_link(fun() -> Self ! {?MODULE, IP, lookup(IP)} end),
            {inet:ntoa(IP), N#names{hosts = H#{IP => pending}, pending = N#names.pending + 1}}
    end.

%% @doc The answer of an async lookup, `{ewpcap_dump_names, IP, Name}'.
-spec resolved(inet:ip_address(), string(), names()) -> names().
resolved(IP, Name, #names{hosts = H, pending = P} = N) ->
    N#names{hosts = H#{IP => Name}, pending = max(0, P - 1)}.

%% @doc The service name of a port (its number when it has none).
-spec port(tcp | udp, 0..65535, names()) -> {string(), names()}.
port(_Proto, Port, #names{numeric = true} = N) ->
    {integer_to_list(Port), N};
port(Proto, Port, #names{services = S} = N) ->
    case S of
        #{{Proto, Port} := Name} ->
            {Name, N};
        _ ->
            Name = case inet:getservbyport(Port, atom_to_list(Proto)) of
                       {ok, Serv} -> Serv;
                       {error, _} -> integer_to_list(Port)
                   end,
            {Name, N#names{services = S#{{Proto, Port} => Name}}}
    end.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

lookup(IP) ->
    case inet:gethostbyaddr(IP, ?LOOKUP_MS) of
        {ok, {hostent, Name, _, _, _, _}} when is_list(Name) -> Name;
        _ -> inet:ntoa(IP)
    end.
