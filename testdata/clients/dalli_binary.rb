require 'dalli'
# dalli 3.0 (binary protocol only) against a node: prints "ALL OK" when
# every check passes. Usage: ruby dalli_binary.rb PORT
port = ARGV[0]
dc = Dalli::Client.new("127.0.0.1:#{port}", socket_timeout: 2)
fails = 0
check = lambda { |name, got, want| if got == want then puts "ok   #{name}" else fails += 1; puts "FAIL #{name}: got #{got.inspect} want #{want.inspect}" end }
dc.flush
check.("set", !!dc.set("abc", "123"), true)
dc.set("abc", "123")
check.("get", dc.get("abc"), "123")
check.("get miss", dc.get("nope"), nil)
check.("add exists", dc.add("abc", "x"), false)
check.("add new", !!dc.add("new", "x"), true)
check.("replace", !!dc.replace("abc", "456"), true)
dc.replace("zzz", "1")
check.("replace miss", dc.get("zzz"), nil)
check.("get_multi", dc.get_multi("abc", "new", "nope"), {"abc"=>"456", "new"=>"x"})
check.("incr create", dc.incr("ctr", 1, nil, 10), 10)
check.("incr", dc.incr("ctr", 5), 15)
check.("decr", dc.decr("ctr", 20), 0)
check.("incr miss", dc.incr("nocounter", 1), nil)
dc.set("raw", "a", 0, raw: true)
check.("append", !!dc.append("raw", "b"), true)
check.("prepend", !!dc.prepend("raw", "_"), true)
check.("get raw", dc.get("raw", raw: true), "_ab")
check.("delete", !!dc.delete("abc"), true)
check.("delete miss", !!dc.delete("abc"), false)
check.("touch", !!dc.touch("new", 100), true)
check.("gat", dc.gat("new", 100), "x")
v, cas = dc.get_cas("new")
check.("get_cas", v, "x")
check.("set_cas", !!dc.set_cas("new", "y", cas), true)
check.("set_cas stale", dc.set_cas("new", "z", cas), false)
check.("cas block", dc.cas("new") { |old| old + "!" } ? true : false, true)
check.("after cas", dc.get("new"), "y!")
dc.multi do
  dc.set("q1", "1"); dc.set("q2", "2"); dc.delete("q1")
end
check.("quiet", [dc.get("q1"), dc.get("q2")], [nil, "2"])
big = "x" * 500_000
dc.set("big", big)
check.("big", dc.get("big") == big, true)
check.("fetch", dc.fetch("f") { "computed" }, "computed")
st = dc.stats
check.("stats", st.values.first["version"], "1.6.18")
check.("version", dc.version.values.first, "1.6.18")
check.("flush", dc.flush.all?, true)
check.("gone", dc.get("q2"), nil)
puts fails == 0 ? "ALL OK" : "#{fails} FAILED"
