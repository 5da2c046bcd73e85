<?php
// php-memcached with OPT_BINARY_PROTOCOL against a node: prints "ALL OK"
// when every check passes. Usage: php php_memcached_binary.php PORT [text]
// ("text": the same checks over the text protocol; bench/suites.sh runs both).
$port = (int)$argv[1];
$binary = ($argv[2] ?? "binary") !== "text";
$m = new Memcached();
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, $binary);
$m->setOption(Memcached::OPT_COMPRESSION, false);
$m->setOption(Memcached::OPT_RECV_TIMEOUT, 2000000);
$m->setOption(Memcached::OPT_SEND_TIMEOUT, 2000000);
$m->addServer('127.0.0.1', $port);
$fails = 0;
function check($name, $got, $want) { global $fails, $m; if ($got === $want) { echo "ok   $name\n"; } else { $fails++; echo "FAIL $name: got ", var_export($got, true), " want ", var_export($want, true), " (", $m->getResultMessage(), ")\n"; } }
check("flush", $m->flush(), true);
check("set", $m->set("abc", "123"), true);
check("get", $m->get("abc"), "123");
check("get miss", $m->get("nope"), false);
check("miss code", $m->getResultCode(), Memcached::RES_NOTFOUND);
check("add exists", $m->add("abc", "x"), false);
// The text protocol has only NOT_STORED; incr with an initial value is
// binary only (libmemcached answers false without asking the server).
check("add exists code", $m->getResultCode(), $binary ? Memcached::RES_DATA_EXISTS : Memcached::RES_NOTSTORED);
check("add", $m->add("new", "x"), true);
check("replace", $m->replace("abc", "456"), true);
check("replace miss", $m->replace("zzz", "1"), false);
check("getMulti", $m->getMulti(["abc", "new", "nope"]), ["abc" => "456", "new" => "x"]);
check("set int", $m->set("n", 5), true);
check("incr", $m->increment("n", 3), 8);
check("decr", $m->decrement("n", 10), 0);
check("incr miss", $m->increment("nocounter", 1), false);
check("incr create", $m->increment("ctr", 1, 10), $binary ? 10 : false);
check("append", $m->append("abc", "7"), true);
check("prepend", $m->prepend("abc", "_"), true);
check("get app", $m->get("abc"), "_4567");
check("delete", $m->delete("abc"), true);
check("delete miss", $m->delete("abc"), false);
check("touch", $m->touch("new", 100), true);
$r = $m->get("new", null, Memcached::GET_EXTENDED);
check("get ext", $r["value"], "x");
check("cas", $m->cas($r["cas"], "new", "y"), true);
check("cas stale", $m->cas($r["cas"], "new", "z"), false);
check("after cas", $m->get("new"), "y");
check("setMulti", $m->setMulti(["a" => "1", "b" => "2"]), true);
check("getMulti2", $m->getMulti(["a", "b"]), ["a" => "1", "b" => "2"]);
check("deleteMulti", $m->deleteMulti(["a", "zz"]), ["a" => true, "zz" => Memcached::RES_NOTFOUND]);
$big = str_repeat("x", 700000);
check("big set", $m->set("big", $big), true);
check("big get", $m->get("big") === $big, true);
check("too big", $m->set("huge", str_repeat("y", 2000000)), false);
check("array", $m->set("arr", [1,2,3]), true);
check("array get", $m->get("arr"), [1,2,3]);
$st = $m->getStats();
check("stats", $st["127.0.0.1:$port"]["version"] ?? null, "1.6.18");
check("version", array_values($m->getVersion())[0], "1.6.18");
check("flush", $m->flush(), true);
check("gone", $m->get("new"), false);
echo $fails == 0 ? "ALL OK\n" : "$fails FAILED\n";
