// Apache Curator recipes against a ZooKeeper-compatible server (Warren, or ZooKeeper 3.8 to
// validate the checks themselves). Driven by tests/python/test_curator.py, which compiles this
// file with javac against Debian's jars (libcurator-*-java, zookeeper) and runs
//
//   java -Xmx256m -cp CLASSES:JARS CuratorSuite recipes connect=HOST:PORT[,HOST:PORT...]
//        [ttl=1] [only=mutex,semaphore] [deadline=SECONDS] [session=MS]
//   java ... CuratorSuite reconnect connect=PROXIED_HOSTS direct=DIRECT_HOSTS rounds=3
//   java ... CuratorSuite expiry connect=PROXIED_HOSTS direct=DIRECT_HOSTS session=4000
//   java ... CuratorSuite list          (the recipe check names, one a line)
//
// Output (stdout): one line per check, "PASS name" or "FAIL name: reason", then
// "DONE passed=N failed=M". Diagnostics go to stderr (and to the log4j file the caller
// configures). Exit status 0 only when every check passed; 3 when the overall deadline
// (default 240 s) ran out, which also prints "FAIL deadline: ..." and a thread dump.
//
// "recipes": every check uses its own fresh Curator clients (separate ZooKeeper sessions) and
// its own paths under a fresh root, and has its own time limit, so one hung check cannot
// hide the others.
//
// "reconnect": one client A connects through a TCP proxy that the caller controls, another
// client B connects directly. A holds an InterProcessMutex (B queues behind it), an
// ephemeral node, a CuratorCache (persistent recursive watch) and, each round, one-shot
// data / exists / child watches. Each round, on stdin/stdout:
//   -> READY r remote=PORT      A is set up and connected (PORT: the proxy port A is on)
//   <- where                    (optional, repeatable) wait until A is connected, then
//   -> AT r remote=PORT         report where it is now (used to steer A to one member)
//   <- dropped                  the caller has cut A's connection (or killed its server)
//   -> CHANGED r                A saw SUSPENDED; B has changed the watched nodes
//   <- go                       the caller has healed the link (or not: A must move)
//   -> PASS round-r / FAIL round-r: why
//   -> ROUND_DONE r remote=PORT
// A must come back RECONNECTED with the same session (never LOST), still holding the lock
// and the ephemeral, its pre-drop watches must fire, and the CuratorCache must deliver the
// changes made while it was away and after it came back.
//
// "expiry": the same set-up plus a LeaderLatch each for A and B; one round (READY 1 /
// dropped / CHANGED 1 / go / PASS expiry) in which the caller keeps A cut off for longer
// than its session timeout: A must see LOST, the server must expire the session (A's
// ephemeral, lock node and latch node deleted, B gets the lock and the leadership), and
// after the link is back A must work under a new session (CuratorCache rebuilt and live,
// its latch taking part again behind B).

import java.io.BufferedReader;
import java.io.Closeable;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.LocalTime;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.CuratorWatcher;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.api.transaction.OperationType;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.cache.NodeCache;
import org.apache.curator.framework.recipes.cache.PathChildrenCache;
import org.apache.curator.framework.recipes.cache.TreeCache;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreMutex;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.nodes.GroupMember;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.nodes.PersistentTtlNode;
import org.apache.curator.framework.recipes.queue.DistributedDelayQueue;
import org.apache.curator.framework.recipes.queue.DistributedPriorityQueue;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

@SuppressWarnings("deprecation") // PathChildrenCache, TreeCache and NodeCache are exercised on purpose
public final class CuratorSuite {
    /** The checks of the "recipes" scenario, in the order they run. */
    static final List<String> RECIPES = List.of(
        "mutex", "readwritelock", "semaphore", "semaphoremutex", "leaderlatch", "leaderselector",
        "atomiclong", "sharedcount", "pathchildrencache", "treecache", "nodecache", "curatorcache",
        "queue", "priorityqueue", "delayqueue", "barrier", "doublebarrier", "persistentnode",
        "persistentttlnode", "groupmember", "transaction", "watches");

    static final long WAIT = 20_000;        // default bound for one expected event, ms
    static final long CHECK_LIMIT = 90_000; // one recipe check, ms

    static String connect;
    static int sessionMs = 20_000;
    static boolean ttlEnabled;
    static final AtomicInteger passed = new AtomicInteger(), failed = new AtomicInteger();
    static final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "suite-worker");
        t.setDaemon(true);
        return t;
    });

    // ------------------------------------------------------------------------------------
    // main, output, deadline
    // ------------------------------------------------------------------------------------
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: CuratorSuite recipes|reconnect|list key=value...");
            System.exit(2);
        }
        String scenario = args[0];
        Map<String, String> opt = new HashMap<>();
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq < 0) {
                System.err.println("bad argument " + args[i] + " (want key=value)");
                System.exit(2);
            }
            opt.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        if (scenario.equals("list")) {
            RECIPES.forEach(CuratorSuite::say);
            return;
        }
        connect = opt.get("connect");
        if (connect == null) {
            System.err.println("connect=HOST:PORT is required");
            System.exit(2);
        }
        sessionMs = Integer.parseInt(opt.getOrDefault("session", "20000"));
        ttlEnabled = opt.getOrDefault("ttl", "0").equals("1");
        startDeadline(Long.parseLong(opt.getOrDefault("deadline", "240")));
        log("scenario " + scenario + " connect=" + connect + " " + opt);
        switch (scenario) {
            case "recipes":
                runRecipes(opt.get("only"));
                break;
            case "reconnect":
                new Reconnect(opt, false).run();
                break;
            case "expiry":
                new Reconnect(opt, true).run();
                break;
            default:
                System.err.println("unknown scenario " + scenario);
                System.exit(2);
        }
        say("DONE passed=" + passed.get() + " failed=" + failed.get());
        System.out.flush();
        // Curator/ZooKeeper threads are not all daemons: leave without waiting for them
        Runtime.getRuntime().halt(failed.get() == 0 ? 0 : 1);
    }

    static void say(String line) {
        synchronized (System.out) {
            System.out.println(line);
            System.out.flush();
        }
    }

    static void log(String line) {
        synchronized (System.err) {
            System.err.println(LocalTime.now() + " [" + Thread.currentThread().getName() + "] " + line);
            System.err.flush();
        }
    }

    static void pass(String name) {
        passed.incrementAndGet();
        say("PASS " + name);
    }

    static void fail(String name, Throwable t) {
        failed.incrementAndGet();
        say("FAIL " + name + ": " + describe(t));
        synchronized (System.err) {
            System.err.println(LocalTime.now() + " check " + name + " failed:");
            t.printStackTrace(System.err);
        }
    }

    static String describe(Throwable t) {
        while ((t instanceof ExecutionException || t.getClass() == RuntimeException.class)
               && t.getCause() != null) {
            t = t.getCause();
        }
        String msg = (t instanceof AssertionError) ? String.valueOf(t.getMessage())
                                                   : t.getClass().getName() + ": " + t.getMessage();
        return msg.replace('\n', ' ').replace('\r', ' ');
    }

    static void startDeadline(long seconds) {
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(seconds * 1000);
            } catch (InterruptedException e) {
                return;
            }
            say("FAIL deadline: the whole run took more than " + seconds + " s");
            synchronized (System.err) {
                System.err.println("=== thread dump at the deadline ===");
                for (ThreadInfo ti : ManagementFactory.getThreadMXBean().dumpAllThreads(false, false)) {
                    System.err.print(ti);
                }
                System.err.flush();
            }
            say("DONE passed=" + passed.get() + " failed=" + (failed.get() + 1));
            Runtime.getRuntime().halt(3);
        }, "deadline");
        t.setDaemon(true);
        t.start();
    }

    // ------------------------------------------------------------------------------------
    // helpers
    // ------------------------------------------------------------------------------------
    static CuratorFramework newClient(String cs, int sessMs) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.builder()
            .connectString(cs)
            .sessionTimeoutMs(sessMs)
            .connectionTimeoutMs(Math.min(15_000, sessMs))
            .retryPolicy(new ExponentialBackoffRetry(100, 12, 2000))
            .build();
        c.start();
        if (!c.blockUntilConnected(30, TimeUnit.SECONDS)) {
            c.close();
            throw new AssertionError("a Curator client could not connect to " + cs + " within 30 s");
        }
        return c;
    }

    /** Closes what was added, in reverse order, quietly. */
    static final class Scope implements AutoCloseable {
        private final Deque<AutoCloseable> stack = new ArrayDeque<>();

        synchronized <T extends AutoCloseable> T add(T c) {
            stack.push(c);
            return c;
        }

        CuratorFramework client() throws Exception {
            return add(newClient(connect, sessionMs));
        }

        @Override
        public void close() {
            while (true) {
                AutoCloseable c;
                synchronized (this) {
                    if (stack.isEmpty()) {
                        return;
                    }
                    c = stack.pop();
                }
                try {
                    c.close();
                } catch (Throwable t) {
                    log("close: " + t);
                }
            }
        }
    }

    interface Check {
        void run(Scope s, String path) throws Exception;
    }

    static void must(boolean cond, String msg) {
        if (!cond) {
            throw new AssertionError(msg);
        }
    }

    static void eq(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) {
            throw new AssertionError(what + ": expected " + expected + ", got " + actual);
        }
    }

    static void waitUntil(String what, long ms, Callable<Boolean> cond) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
        Exception last = null;
        while (true) {
            try {
                if (Boolean.TRUE.equals(cond.call())) {
                    return;
                }
                last = null;
            } catch (InterruptedException e) {
                throw e;
            } catch (Exception e) {
                last = e;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + ms + " ms waiting for " + what
                    + (last != null ? " (last error: " + last + ")" : ""));
            }
            Thread.sleep(20);
        }
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String s(byte[] b) {
        return b == null ? "null" : new String(b, StandardCharsets.UTF_8);
    }

    static long sid(CuratorFramework c) throws Exception {
        return c.getZookeeperClient().getZooKeeper().getSessionId();
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    /** A sync through c's server, so that c's next read sees every write acknowledged before. */
    static void sync(CuratorFramework c, String path) throws Exception {
        for (int attempt = 0; ; attempt++) {
            CountDownLatch done = new CountDownLatch(1);
            AtomicInteger rc = new AtomicInteger(Integer.MIN_VALUE);
            c.getZookeeperClient().getZooKeeper().sync(path, (code, p, ctx) -> {
                rc.set(code);
                done.countDown();
            }, null);
            must(done.await(30, TimeUnit.SECONDS), "sync(" + path + ") did not complete within 30 s");
            if (rc.get() == 0) {
                return;
            }
            KeeperException.Code code = KeeperException.Code.get(rc.get());
            if (attempt < 20 && (code == KeeperException.Code.CONNECTIONLOSS
                                 || code == KeeperException.Code.OPERATIONTIMEOUT)) {
                Thread.sleep(250);
                continue;
            }
            throw new AssertionError("sync(" + path + ") failed: " + code);
        }
    }

    /** create(); a NodeExists with the same data after a retried attempt counts as success. */
    static void createOnce(CuratorFramework c, String path, String data) throws Exception {
        try {
            c.create().forPath(path, b(data));
        } catch (KeeperException.NodeExistsException e) {
            sync(c, path);
            eq(data, s(c.getData().forPath(path)), "data of " + path + " (NodeExists on create)");
            log("create " + path + ": NodeExists after a retry, data matches");
        }
    }

    /** The children of a node, none if it is gone (an emptied container may be reaped at once:
     *  the servers here run their container reaper every 500 ms). */
    static List<String> childrenOrNone(CuratorFramework c, String path) throws Exception {
        try {
            return c.getChildren().forPath(path);
        } catch (KeeperException.NoNodeException e) {
            return List.of();
        }
    }

    static Stat stat(CuratorFramework c, String path) throws Exception {
        return c.checkExists().forPath(path);
    }

    /** Waits for every future; rethrows the first failure's cause. */
    static void getAll(Collection<? extends Future<?>> fs, long ms) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
        for (Future<?> f : fs) {
            long left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
            try {
                f.get(left, TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                if (c instanceof Exception) {
                    throw (Exception) c;
                }
                if (c instanceof Error) {
                    throw (Error) c;
                }
                throw e;
            } catch (TimeoutException e) {
                throw new AssertionError("a worker did not finish within " + ms + " ms");
            }
        }
    }

    /** Events as strings, with expectations on the next ones. */
    static final class Events {
        final String name;
        final LinkedBlockingQueue<String> q = new LinkedBlockingQueue<>();
        final List<String> all = Collections.synchronizedList(new ArrayList<>());
        final Predicate<String> ignore;

        Events(String name, Predicate<String> ignore) {
            this.name = name;
            this.ignore = ignore;
        }

        Events(String name) {
            this(name, e -> false);
        }

        void add(String e) {
            log(name + " event: " + e);
            all.add(e);
            if (!ignore.test(e)) {
                q.add(e);
            }
        }

        String next(String expected, long ms) throws InterruptedException {
            String e = q.poll(ms, TimeUnit.MILLISECONDS);
            if (e == null) {
                throw new AssertionError(name + ": no event within " + ms + " ms, expected "
                    + expected + "; all events so far: " + snapshot());
            }
            return e;
        }

        void expect(String expected) throws InterruptedException {
            expect(expected, WAIT);
        }

        void expect(String expected, long ms) throws InterruptedException {
            String e = next(expected, ms);
            if (!e.equals(expected)) {
                throw new AssertionError(name + ": expected event " + expected + ", got " + e
                    + "; all events so far: " + snapshot());
            }
        }

        /** The next |wanted| events are exactly `wanted`, in any order. */
        void expectSet(Collection<String> wanted, long ms) throws InterruptedException {
            Set<String> want = new TreeSet<>(wanted);
            Set<String> got = new TreeSet<>();
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
            for (int i = 0; i < want.size(); i++) {
                long left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
                String e = next("the rest of " + want + " (have " + got + ")", left);
                if (!want.contains(e) || !got.add(e)) {
                    throw new AssertionError(name + ": expected events " + want + " in any order, got "
                        + e + " after " + got + "; all events so far: " + snapshot());
                }
            }
        }

        /** Skips events until `expected` comes. */
        void await(String expected, long ms) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
            while (true) {
                long left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
                if (next(expected, left).equals(expected)) {
                    return;
                }
            }
        }

        void quiet(long ms, String why) throws InterruptedException {
            String e = q.poll(ms, TimeUnit.MILLISECONDS);
            if (e != null) {
                throw new AssertionError(name + ": unexpected event " + e + " (" + why
                    + "); all events so far: " + snapshot());
            }
        }

        List<String> snapshot() {
            synchronized (all) {
                return new ArrayList<>(all);
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // the recipes scenario
    // ------------------------------------------------------------------------------------
    static void runRecipes(String only) throws Exception {
        Set<String> selected = new HashSet<>(RECIPES);
        if (only != null && !only.isEmpty()) {
            selected = new HashSet<>(Arrays.asList(only.split(",")));
        }
        Map<String, Check> checks = new LinkedHashMap<>();
        checks.put("mutex", CuratorSuite::mutex);
        checks.put("readwritelock", CuratorSuite::readWriteLock);
        checks.put("semaphore", CuratorSuite::semaphore);
        checks.put("semaphoremutex", CuratorSuite::semaphoreMutex);
        checks.put("leaderlatch", CuratorSuite::leaderLatch);
        checks.put("leaderselector", CuratorSuite::leaderSelector);
        checks.put("atomiclong", CuratorSuite::atomicLong);
        checks.put("sharedcount", CuratorSuite::sharedCount);
        checks.put("pathchildrencache", CuratorSuite::pathChildrenCache);
        checks.put("treecache", CuratorSuite::treeCache);
        checks.put("nodecache", CuratorSuite::nodeCache);
        checks.put("curatorcache", CuratorSuite::curatorCache);
        checks.put("queue", CuratorSuite::queue);
        checks.put("priorityqueue", CuratorSuite::priorityQueue);
        checks.put("delayqueue", CuratorSuite::delayQueue);
        checks.put("barrier", CuratorSuite::barrier);
        checks.put("doublebarrier", CuratorSuite::doubleBarrier);
        checks.put("persistentnode", CuratorSuite::persistentNode);
        checks.put("persistentttlnode", CuratorSuite::persistentTtlNode);
        checks.put("groupmember", CuratorSuite::groupMember);
        checks.put("transaction", CuratorSuite::transaction);
        checks.put("watches", CuratorSuite::watches);
        if (!checks.keySet().equals(new HashSet<>(RECIPES)) || checks.size() != RECIPES.size()) {
            throw new IllegalStateException("RECIPES and the check table disagree");
        }
        String root = "/curator-" + UUID.randomUUID().toString().substring(0, 8);
        for (Map.Entry<String, Check> e : checks.entrySet()) {
            if (selected.contains(e.getKey())) {
                runCheck(e.getKey(), root + "/" + e.getKey(), e.getValue());
            }
        }
    }

    static void runCheck(String name, String path, Check check) {
        log("=== " + name + " (" + path + ")");
        long t0 = System.nanoTime();
        Scope scope = new Scope();
        Future<?> f = pool.submit(() -> {
            check.run(scope, path);
            return null;
        });
        Throwable error = null;
        try {
            f.get(CHECK_LIMIT, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            error = new AssertionError("did not finish within " + CHECK_LIMIT + " ms");
        } catch (ExecutionException e) {
            error = e.getCause();
        } catch (Throwable t) {
            error = t;
        }
        // close the check's recipes and clients, bounded in time
        Future<?> closing = pool.submit(scope::close);
        try {
            closing.get(20, TimeUnit.SECONDS);
        } catch (Exception e) {
            log("closing " + name + "'s clients: " + e);
        }
        log("=== " + name + " took " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms");
        if (error == null) {
            pass(name);
        } else {
            fail(name, error);
        }
    }

    // -- locks ---------------------------------------------------------------------------
    static void mutex(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client(), o = s.client();
        InterProcessMutex ma = new InterProcessMutex(a, p), mb = new InterProcessMutex(b, p);
        must(ma.acquire(30, TimeUnit.SECONDS), "A could not take a free lock");
        must(ma.acquire(30, TimeUnit.SECONDS), "A could not re-enter the lock it holds");
        sync(o, p);
        List<String> kids = o.getChildren().forPath(p);
        eq(1, kids.size(), "lock nodes after a reentrant acquire " + kids);
        eq(hex(sid(a)), hex(stat(o, p + "/" + kids.get(0)).getEphemeralOwner()), "the lock node's owner");

        Future<Boolean> quick = pool.submit(() -> mb.acquire(300, TimeUnit.MILLISECONDS));
        must(!quick.get(20, TimeUnit.SECONDS), "B acquired the lock while A held it");
        waitUntil("B's abandoned lock node to be deleted", WAIT,
            () -> { sync(o, p); return o.getChildren().forPath(p).size() == 1; });

        CountDownLatch bHas = new CountDownLatch(1), bRelease = new CountDownLatch(1);
        Future<?> fb = pool.submit(() -> {
            must(mb.acquire(60, TimeUnit.SECONDS), "B never got the lock");
            bHas.countDown();
            bRelease.await(60, TimeUnit.SECONDS);
            mb.release();
            return null;
        });
        waitUntil("B to queue behind A", WAIT,
            () -> { sync(o, p); return o.getChildren().forPath(p).size() == 2; });
        ma.release();
        Thread.sleep(500);
        must(bHas.getCount() == 1, "B got the lock while A still held it once (reentrant count 2 -> 1)");
        must(ma.isAcquiredInThisProcess(), "A lost the lock after one of its two releases");
        ma.release();
        must(bHas.await(20, TimeUnit.SECONDS), "B did not get the lock after A released it");
        must(!ma.acquire(300, TimeUnit.MILLISECONDS), "A acquired the lock while B held it");
        bRelease.countDown();
        getAll(List.of(fb), 20_000);
        waitUntil("every lock node to go", WAIT,
            () -> { sync(o, p); return childrenOrNone(o, p).isEmpty(); });

        // mutual exclusion under contention: unguarded read-modify-write of a znode
        String counter = p + "-counter";
        o.create().forPath(counter, b("0"));
        AtomicInteger inside = new AtomicInteger(), overlaps = new AtomicInteger();
        int n = 15;
        List<Future<?>> fs = new ArrayList<>();
        for (CuratorFramework c : List.of(a, b)) {
            InterProcessMutex m = new InterProcessMutex(c, p);
            fs.add(pool.submit(() -> {
                for (int i = 0; i < n; i++) {
                    must(m.acquire(30, TimeUnit.SECONDS), "acquire under contention timed out");
                    try {
                        if (inside.incrementAndGet() != 1) {
                            overlaps.incrementAndGet();
                        }
                        int v = Integer.parseInt(s(c.getData().forPath(counter)));
                        Thread.sleep(2);
                        c.setData().forPath(counter, b(Integer.toString(v + 1)));
                        inside.decrementAndGet();
                    } finally {
                        m.release();
                    }
                }
                return null;
            }));
        }
        getAll(fs, 60_000);
        eq(0, overlaps.get(), "times both clients were inside the lock at once");
        sync(o, counter);
        eq(Integer.toString(2 * n), s(o.getData().forPath(counter)),
            "the counter after 2 x " + n + " locked read-modify-writes");
    }

    static void readWriteLock(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client(), c = s.client();
        InterProcessReadWriteLock la = new InterProcessReadWriteLock(a, p);
        InterProcessReadWriteLock lb = new InterProcessReadWriteLock(b, p);
        InterProcessReadWriteLock lc = new InterProcessReadWriteLock(c, p);
        must(la.readLock().acquire(30, TimeUnit.SECONDS), "A could not take a free read lock");
        must(lb.readLock().acquire(30, TimeUnit.SECONDS), "a second reader was blocked by a reader");
        CountDownLatch writerHas = new CountDownLatch(1), writerRelease = new CountDownLatch(1);
        Future<?> w = pool.submit(() -> {
            must(lc.writeLock().acquire(60, TimeUnit.SECONDS), "the writer never got the lock");
            writerHas.countDown();
            writerRelease.await(60, TimeUnit.SECONDS);
            lc.writeLock().release();
            return null;
        });
        Thread.sleep(400);
        must(writerHas.getCount() == 1, "the writer got the lock while two readers held it");
        la.readLock().release();
        Thread.sleep(400);
        must(writerHas.getCount() == 1, "the writer got the lock while a reader held it");
        lb.readLock().release();
        must(writerHas.await(20, TimeUnit.SECONDS), "the writer did not get the lock after the readers left");
        must(!la.readLock().acquire(300, TimeUnit.MILLISECONDS), "a reader got in while the writer held the lock");
        writerRelease.countDown();
        getAll(List.of(w), 20_000);
        must(la.readLock().acquire(30, TimeUnit.SECONDS), "a reader could not get in after the writer left");
        la.readLock().release();
    }

    static void semaphore(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client(), c = s.client(), o = s.client();
        InterProcessSemaphoreV2 sa = new InterProcessSemaphoreV2(a, p, 2);
        InterProcessSemaphoreV2 sb = new InterProcessSemaphoreV2(b, p, 2);
        InterProcessSemaphoreV2 sc = new InterProcessSemaphoreV2(c, p, 2);
        Lease la = sa.acquire(30, TimeUnit.SECONDS);
        must(la != null, "the first lease of 2 was not granted");
        Lease lb = sb.acquire(30, TimeUnit.SECONDS);
        must(lb != null, "the second lease of 2 was not granted");
        Lease extra = sc.acquire(300, TimeUnit.MILLISECONDS);
        if (extra != null) {
            extra.close();
            throw new AssertionError("a third lease was granted with maxLeases = 2");
        }
        sync(o, p);
        eq(2, o.getChildren().forPath(p + "/leases").size(), "lease nodes while two leases are held");
        must(sa.acquire(2, 300, TimeUnit.MILLISECONDS) == null, "two more leases were granted while two were held");
        Future<Lease> fc = pool.submit(() -> sc.acquire(60, TimeUnit.SECONDS));
        Thread.sleep(400);
        must(!fc.isDone(), "C got a lease while both were held");
        sa.returnLease(la);
        Lease lc = fc.get(20, TimeUnit.SECONDS);
        must(lc != null, "C did not get the lease A returned");
        eq(2, sa.getParticipantNodes().size(), "participant nodes after C took A's lease");
        sb.returnLease(lb);
        sc.returnLease(lc);
        waitUntil("every lease node to go", WAIT,
            () -> { sync(o, p); return childrenOrNone(o, p + "/leases").isEmpty(); });
    }

    static void semaphoreMutex(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client();
        InterProcessSemaphoreMutex ma = new InterProcessSemaphoreMutex(a, p);
        InterProcessSemaphoreMutex mb = new InterProcessSemaphoreMutex(b, p);
        must(ma.acquire(30, TimeUnit.SECONDS), "A could not take a free lock");
        must(!ma.acquire(300, TimeUnit.MILLISECONDS), "A took the non-reentrant lock a second time");
        must(!mb.acquire(300, TimeUnit.MILLISECONDS), "B took the lock while A held it");
        Future<Boolean> fb = pool.submit(() -> mb.acquire(60, TimeUnit.SECONDS));
        Thread.sleep(400);
        must(!fb.isDone(), "B got the lock while A held it");
        ma.release();
        must(fb.get(20, TimeUnit.SECONDS), "B did not get the lock after A released it");
        must(!ma.acquire(300, TimeUnit.MILLISECONDS), "A took the lock while B held it");
        mb.release();
        must(ma.acquire(30, TimeUnit.SECONDS), "A could not take the lock after B released it");
        ma.release();
    }

    // -- leader election -------------------------------------------------------------------
    static void leaderLatch(Scope s, String p) throws Exception {
        List<String> ids = List.of("A", "B", "C");
        Map<String, LeaderLatch> latches = new LinkedHashMap<>();
        Map<String, AtomicInteger> became = new ConcurrentHashMap<>(), lost = new ConcurrentHashMap<>();
        for (String id : ids) {
            CuratorFramework c = s.client();
            LeaderLatch l = new LeaderLatch(c, p, id, LeaderLatch.CloseMode.NOTIFY_LEADER);
            became.put(id, new AtomicInteger());
            lost.put(id, new AtomicInteger());
            l.addListener(new LeaderLatchListener() {
                @Override
                public void isLeader() {
                    became.get(id).incrementAndGet();
                }

                @Override
                public void notLeader() {
                    lost.get(id).incrementAndGet();
                }
            });
            latches.put(id, l);
            s.add(() -> {
                if (l.getState() == LeaderLatch.State.STARTED) {
                    l.close();
                }
            });
        }
        for (LeaderLatch l : latches.values()) {
            l.start();
        }
        String first = awaitOneLeader(latches, ids, null);
        eq(3, latches.get(first).getParticipants().size(), "participants");
        eq(1, became.get(first).get(), "isLeader() calls for " + first);
        for (String id : ids) {
            if (!id.equals(first)) {
                eq(0, became.get(id).get(), "isLeader() calls for non-leader " + id);
            }
        }
        latches.get(first).close();
        eq(1, lost.get(first).get(), "notLeader() calls for " + first + " after close");
        List<String> rest = ids.stream().filter(id -> !id.equals(first)).collect(Collectors.toList());
        String second = awaitOneLeader(latches, rest, first);
        eq(2, latches.get(second).getParticipants().size(), "participants after the leader left");
        latches.get(second).close();
        List<String> last = rest.stream().filter(id -> !id.equals(second)).collect(Collectors.toList());
        awaitOneLeader(latches, last, second);
    }

    /** Exactly one of `ids` leads, stays so for a second, and everybody agrees who. */
    static String awaitOneLeader(Map<String, LeaderLatch> latches, List<String> ids, String notThis)
            throws Exception {
        AtomicReference<String> leader = new AtomicReference<>();
        waitUntil("exactly one leader among " + ids, WAIT, () -> {
            List<String> l = ids.stream().filter(id -> latches.get(id).hasLeadership())
                .collect(Collectors.toList());
            if (l.size() == 1) {
                leader.set(l.get(0));
                return true;
            }
            return false;
        });
        String who = leader.get();
        must(!who.equals(notThis), "leadership stayed with " + notThis + " after it closed its latch");
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1000);
        while (System.nanoTime() < until) {
            List<String> l = ids.stream().filter(id -> latches.get(id).hasLeadership())
                .collect(Collectors.toList());
            eq(List.of(who), l, "leaders among " + ids + " (must stay exactly one)");
            Thread.sleep(50);
        }
        for (String id : ids) {
            waitUntil(id + " to name " + who + " as the leader", WAIT,
                () -> who.equals(latches.get(id).getLeader().getId()));
        }
        return who;
    }

    static void leaderSelector(Scope s, String p) throws Exception {
        List<String> ids = List.of("A", "B", "C");
        AtomicInteger active = new AtomicInteger(), maxActive = new AtomicInteger();
        List<String> terms = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch go = new CountDownLatch(1);
        List<LeaderSelector> selectors = new ArrayList<>();
        for (String id : ids) {
            CuratorFramework c = s.client();
            LeaderSelector sel = new LeaderSelector(c, p, new LeaderSelectorListenerAdapter() {
                @Override
                public void takeLeadership(CuratorFramework client) throws Exception {
                    int now = active.incrementAndGet();
                    maxActive.accumulateAndGet(now, Math::max);
                    terms.add(id);
                    try {
                        go.await(60, TimeUnit.SECONDS);
                        Thread.sleep(100);
                    } finally {
                        active.decrementAndGet();
                    }
                }
            });
            sel.setId(id);
            sel.autoRequeue();
            selectors.add(sel);
            AtomicBoolean closed = new AtomicBoolean();
            s.add(() -> {
                if (closed.compareAndSet(false, true)) {
                    sel.close();
                }
            });
            sel.start();
        }
        waitUntil("all three selectors to take part", WAIT,
            () -> selectors.get(0).getParticipants().size() == 3);
        waitUntil("a selector to take leadership", WAIT, () -> !terms.isEmpty());
        String firstLeader = terms.get(0);
        eq(firstLeader, selectors.get(0).getLeader().getId(), "the leader named by getLeader()");
        go.countDown();
        waitUntil("six leadership terms", 30_000, () -> terms.size() >= 6);
        List<String> t = new ArrayList<>(terms.subList(0, 6));
        eq(1, maxActive.get(), "most selectors leading at once");
        for (int i = 0; i + 3 <= 6; i++) {
            eq(new TreeSet<>(ids), new TreeSet<>(t.subList(i, i + 3)),
                "leaders of three consecutive terms (autoRequeue must rotate) in " + t);
        }
    }

    // -- shared values ---------------------------------------------------------------------
    static void atomicLong(Scope s, String p) throws Exception {
        int perThread = 20;
        List<CuratorFramework> clients = List.of(s.client(), s.client(), s.client());
        Set<Long> seen = ConcurrentHashMap.newKeySet();
        List<Future<?>> fs = new ArrayList<>();
        for (CuratorFramework c : clients) {
            DistributedAtomicLong dal = new DistributedAtomicLong(c, p, new RetryNTimes(100, 5));
            fs.add(pool.submit(() -> {
                for (int i = 0; i < perThread; i++) {
                    AtomicValue<Long> r = null;
                    for (int tries = 0; tries < 50; tries++) {
                        r = dal.increment();
                        if (r.succeeded()) {
                            break;
                        }
                    }
                    must(r.succeeded(), "an increment did not succeed in 50 tries");
                    eq(r.preValue() + 1, (long) r.postValue(), "postValue of an increment");
                    must(seen.add(r.postValue()), "two increments both produced " + r.postValue());
                }
                return null;
            }));
        }
        getAll(fs, 60_000);
        CuratorFramework o = s.client();
        sync(o, p);
        DistributedAtomicLong check = new DistributedAtomicLong(o, p, new RetryNTimes(10, 10));
        long total = 3L * perThread;
        eq(total, (long) check.get().postValue(), "the counter after " + total + " concurrent increments");
        Set<Long> want = new TreeSet<>();
        for (long v = 1; v <= total; v++) {
            want.add(v);
        }
        eq(want, new TreeSet<>(seen), "values returned by the increments");
        must(!check.compareAndSet(total - 1, 100L).succeeded(), "compareAndSet with a stale expected value succeeded");
        must(check.compareAndSet(total, 100L).succeeded(), "compareAndSet with the current value failed");
        eq(100L, (long) check.get().postValue(), "the value after compareAndSet");
    }

    static void sharedCount(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client(), o = s.client();
        SharedCount sa = s.add(new SharedCount(a, p, 0)), sb = s.add(new SharedCount(b, p, 0));
        Events aEv = new Events("sharedcount A"), bEv = new Events("sharedcount B");
        sa.addListener(counter(aEv));
        sb.addListener(counter(bEv));
        sa.start();
        sb.start();
        VersionedValue<Integer> va = sa.getVersionedValue();
        eq(0, va.getValue(), "initial count");
        VersionedValue<Integer> staleB = sb.getVersionedValue();
        must(sa.trySetCount(va, 5), "a versioned set from the current version failed");
        bEv.expect("5");
        eq(5, sb.getCount(), "B's count after A set 5");
        must(!sb.trySetCount(staleB, 7), "a set with a stale version succeeded");
        // the server's own version check
        sync(o, p);
        Stat st = stat(o, p);
        eq(1, st.getVersion(), "the count node's version after one set");
        try {
            o.setData().withVersion(0).forPath(p, ByteBuffer.allocate(4).putInt(99).array());
            throw new AssertionError("setData with a stale version succeeded");
        } catch (KeeperException.BadVersionException expected) {
            // what ZooKeeper answers
        }
        VersionedValue<Integer> vb = sb.getVersionedValue();
        eq(5, vb.getValue(), "B's versioned value");
        must(sb.trySetCount(vb, 9), "B's versioned set from the current version failed");
        aEv.await("9", WAIT);   // (A may or may not have been told about its own 5 first)
        eq(9, sa.getCount(), "A's count after B set 9");
        sync(o, p);
        eq(9, ByteBuffer.wrap(o.getData().forPath(p)).getInt(), "the count node's bytes");
        sb.setCount(11);
        aEv.await("11", WAIT);
    }

    static SharedCountListener counter(Events ev) {
        return new SharedCountListener() {
            @Override
            public void countHasChanged(SharedCountReader reader, int newCount) {
                ev.add(Integer.toString(newCount));
            }

            @Override
            public void stateChanged(CuratorFramework client, ConnectionState newState) {
                log("sharedcount state " + newState);
            }
        };
    }

    // -- caches ----------------------------------------------------------------------------
    static void pathChildrenCache(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client();
        b.create().creatingParentsIfNeeded().forPath(p + "/pre", b("0"));
        sync(a, p);
        PathChildrenCache cache = s.add(new PathChildrenCache(a, p, true));
        Events ev = new Events("pathchildrencache", e -> e.startsWith("CONNECTION_"));
        cache.getListenable().addListener((client, e) -> ev.add(e.getType()
            + (e.getData() != null ? " " + e.getData().getPath() + "=" + s(e.getData().getData()) : "")));
        cache.start(PathChildrenCache.StartMode.POST_INITIALIZED_EVENT);
        ev.expect("CHILD_ADDED " + p + "/pre=0");
        ev.expect("INITIALIZED");
        b.create().forPath(p + "/new", b("1"));
        ev.expect("CHILD_ADDED " + p + "/new=1");
        b.setData().forPath(p + "/new", b("2"));
        ev.expect("CHILD_UPDATED " + p + "/new=2");
        b.delete().forPath(p + "/pre");
        ev.expect("CHILD_REMOVED " + p + "/pre=0");
        eq(List.of(p + "/new=2"), cache.getCurrentData().stream()
            .map(d -> d.getPath() + "=" + s(d.getData())).collect(Collectors.toList()), "cached children");
        ev.quiet(300, "no change was made");
    }

    static void treeCache(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client();
        b.create().creatingParentsIfNeeded().forPath(p + "/x/y", b("y"));
        sync(a, p);
        TreeCache tc = s.add(TreeCache.newBuilder(a, p).setCacheData(true).build());
        Events ev = new Events("treecache", e -> e.startsWith("CONNECTION_"));
        tc.getListenable().addListener((client, e) -> ev.add(e.getType()
            + (e.getData() != null ? " " + e.getData().getPath() + "=" + s(e.getData().getData()) : "")));
        tc.start();
        ev.expectSet(List.of("NODE_ADDED " + p + "=", "NODE_ADDED " + p + "/x=", "NODE_ADDED " + p + "/x/y=y"), WAIT);
        ev.expect("INITIALIZED");
        b.create().forPath(p + "/x/y/z", b("z"));
        ev.expect("NODE_ADDED " + p + "/x/y/z=z");
        b.setData().forPath(p + "/x", b("x2"));
        ev.expect("NODE_UPDATED " + p + "/x=x2");
        b.delete().forPath(p + "/x/y/z");
        ev.expect("NODE_REMOVED " + p + "/x/y/z=z");
        eq(Set.of("y"), tc.getCurrentChildren(p + "/x").keySet(), "cached children of " + p + "/x");
        eq("x2", s(tc.getCurrentData(p + "/x").getData()), "cached data of " + p + "/x");
        b.delete().deletingChildrenIfNeeded().forPath(p + "/x");
        ev.expectSet(List.of("NODE_REMOVED " + p + "/x/y=y", "NODE_REMOVED " + p + "/x=x2"), WAIT);
        eq(Set.of(), tc.getCurrentChildren(p).keySet(), "cached children of the root after the delete");
    }

    static void nodeCache(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client();
        b.create().creatingParentsIfNeeded().forPath(p + "-parent");
        NodeCache nc = s.add(new NodeCache(a, p));
        Events ev = new Events("nodecache");
        nc.getListenable().addListener(() -> {
            ChildData d = nc.getCurrentData();
            ev.add(d == null ? "null" : s(d.getData()));
        });
        nc.start(true);
        must(nc.getCurrentData() == null, "a NodeCache on a missing node has data");
        b.create().forPath(p, b("v1"));
        ev.expect("v1");
        b.setData().forPath(p, b("v2"));
        ev.expect("v2");
        b.delete().forPath(p);
        ev.expect("null");
        b.create().forPath(p, b("v3"));
        ev.expect("v3");
        eq(0, nc.getCurrentData().getStat().getVersion(), "version of the re-created node");
        ev.quiet(300, "no change was made");
    }

    static String cacheEvent(CuratorCacheListener.Type type, ChildData old, ChildData data) {
        String path = data != null ? data.getPath() : old.getPath();
        return type + " " + path + " " + (old == null ? "null" : s(old.getData())) + "->"
            + (data == null ? "null" : s(data.getData()));
    }

    /** Starts a CuratorCache on `path` that reports its events and "INITIALIZED" to `ev`, and
     *  waits for it to initialise. */
    static CuratorCache startCache(CuratorFramework c, String path, Events ev) throws Exception {
        CuratorCache cc = CuratorCache.build(c, path);
        CountDownLatch init = new CountDownLatch(1);
        cc.listenable().addListener(new CuratorCacheListener() {
            @Override
            public void event(Type type, ChildData oldData, ChildData data) {
                ev.add(cacheEvent(type, oldData, data));
            }

            @Override
            public void initialized() {
                ev.add("INITIALIZED");
                init.countDown();
            }
        });
        cc.start();
        must(init.await(WAIT, TimeUnit.MILLISECONDS),
            "CuratorCache on " + path + " never initialised (its persistent recursive watch is set with addWatch, opcode 106)");
        return cc;
    }

    static void curatorCache(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client();
        b.create().creatingParentsIfNeeded().forPath(p + "/pre/deep", b("d"));
        sync(a, p);
        Events ev = new Events("curatorcache");
        CuratorCache cc = s.add(startCache(a, p, ev));
        ev.expectSet(List.of("NODE_CREATED " + p + " null->", "NODE_CREATED " + p + "/pre null->",
            "NODE_CREATED " + p + "/pre/deep null->d"), WAIT);
        ev.expect("INITIALIZED");
        eq(3, cc.size(), "cached nodes");
        b.create().creatingParentsIfNeeded().forPath(p + "/a/b/c", b("c"));
        ev.expectSet(List.of("NODE_CREATED " + p + "/a null->", "NODE_CREATED " + p + "/a/b null->",
            "NODE_CREATED " + p + "/a/b/c null->c"), WAIT);
        b.setData().forPath(p + "/a/b/c", b("c2"));
        ev.expect("NODE_CHANGED " + p + "/a/b/c c->c2");
        b.delete().forPath(p + "/pre/deep");
        ev.expect("NODE_DELETED " + p + "/pre/deep d->null");
        eq("c2", cc.get(p + "/a/b/c").map(d -> s(d.getData())).orElse("<absent>"), "cached data of " + p + "/a/b/c");
        must(cc.get(p + "/pre/deep").isEmpty(), "a deleted node is still cached");
        eq(5, cc.size(), "cached nodes at the end");
        ev.quiet(300, "no change was made");
    }

    // -- queue and barriers ----------------------------------------------------------------
    static final QueueSerializer<String> STRINGS = new QueueSerializer<>() {
        @Override
        public byte[] serialize(String item) {
            return b(item);
        }

        @Override
        public String deserialize(byte[] bytes) {
            return s(bytes);
        }
    };

    static QueueConsumer<String> into(Collection<String> sink) {
        return new QueueConsumer<>() {
            @Override
            public void consumeMessage(String message) {
                sink.add(message);
            }

            @Override
            public void stateChanged(CuratorFramework client, ConnectionState newState) {
                log("queue consumer state " + newState);
            }
        };
    }

    static void queue(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client(), c = s.client(), o = s.client();
        // two competing consumers: every message consumed exactly once
        ConcurrentLinkedQueue<String> got1 = new ConcurrentLinkedQueue<>(), got2 = new ConcurrentLinkedQueue<>();
        DistributedQueue<String> q1 = s.add(QueueBuilder.builder(a, into(got1), STRINGS, p).buildQueue());
        DistributedQueue<String> q2 = s.add(QueueBuilder.builder(c, into(got2), STRINGS, p).buildQueue());
        DistributedQueue<String> prod = s.add(QueueBuilder.builder(b, null, STRINGS, p).putInBackground(false).buildQueue());
        q1.start();
        q2.start();
        prod.start();
        Set<String> sent = new TreeSet<>();
        for (int i = 0; i < 30; i++) {
            String m = String.format("m%02d", i);
            prod.put(m);
            sent.add(m);
        }
        waitUntil("30 messages consumed", 30_000, () -> got1.size() + got2.size() >= 30);
        Thread.sleep(500);
        List<String> all = new ArrayList<>(got1);
        all.addAll(got2);
        eq(30, all.size(), "messages consumed (" + got1.size() + " + " + got2.size() + "; duplicates?)");
        eq(sent, new TreeSet<>(all), "the consumed messages");
        waitUntil("the queue node to be empty", WAIT,
            () -> { sync(o, p); return childrenOrNone(o, p).isEmpty(); });
        // one consumer started after the puts: FIFO order
        String p2 = p + "-fifo";
        DistributedQueue<String> prod2 = s.add(QueueBuilder.builder(b, null, STRINGS, p2).putInBackground(false).buildQueue());
        prod2.start();
        List<String> order = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            order.add("f" + i);
            prod2.put("f" + i);
        }
        List<String> got = Collections.synchronizedList(new ArrayList<>());
        DistributedQueue<String> q3 = s.add(QueueBuilder.builder(a, into(got), STRINGS, p2).buildQueue());
        q3.start();
        waitUntil("10 messages consumed in order", WAIT, () -> got.size() >= 10);
        Thread.sleep(300);
        eq(order, new ArrayList<>(got), "consumption order");
    }

    static void priorityQueue(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client();
        DistributedPriorityQueue<String> prod = s.add(QueueBuilder.builder(b, null, STRINGS, p)
            .putInBackground(false).buildPriorityQueue(0));
        prod.start();
        for (int prio : new int[] {5, 1, 3, 0, 4, 2}) {
            prod.put("p" + prio, prio);
        }
        List<String> got = Collections.synchronizedList(new ArrayList<>());
        DistributedPriorityQueue<String> cons = s.add(QueueBuilder.builder(a, into(got), STRINGS, p)
            .buildPriorityQueue(0));
        cons.start();
        waitUntil("6 messages consumed", WAIT, () -> got.size() >= 6);
        Thread.sleep(300);
        eq(List.of("p0", "p1", "p2", "p3", "p4", "p5"), new ArrayList<>(got), "consumption order (by priority)");
    }

    static void delayQueue(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client();
        Map<String, Long> at = new ConcurrentHashMap<>();
        List<String> got = Collections.synchronizedList(new ArrayList<>());
        QueueConsumer<String> consumer = into(new java.util.AbstractCollection<String>() {
            @Override
            public boolean add(String m) {
                at.put(m, System.currentTimeMillis());
                return got.add(m);
            }

            @Override
            public java.util.Iterator<String> iterator() {
                return got.iterator();
            }

            @Override
            public int size() {
                return got.size();
            }
        });
        DistributedDelayQueue<String> prod = s.add(QueueBuilder.builder(b, null, STRINGS, p)
            .putInBackground(false).buildDelayQueue());
        prod.start();
        long now = System.currentTimeMillis();
        prod.put("late", now + 1500);
        prod.put("now", now);
        DistributedDelayQueue<String> cons = s.add(QueueBuilder.builder(a, consumer, STRINGS, p).buildDelayQueue());
        cons.start();
        waitUntil("2 messages consumed", WAIT, () -> got.size() >= 2);
        eq(List.of("now", "late"), new ArrayList<>(got), "consumption order");
        must(at.get("late") >= now + 1500, "a message delayed by 1500 ms was consumed after "
            + (at.get("late") - now) + " ms");
    }

    static void barrier(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client(), c = s.client(), o = s.client();
        DistributedBarrier ba = new DistributedBarrier(a, p);
        ba.setBarrier();
        sync(b, p);
        sync(c, p);
        Future<Boolean> fb = pool.submit(() -> new DistributedBarrier(b, p).waitOnBarrier(60, TimeUnit.SECONDS));
        Future<Boolean> fc = pool.submit(() -> new DistributedBarrier(c, p).waitOnBarrier(60, TimeUnit.SECONDS));
        sync(o, p);
        must(!new DistributedBarrier(o, p).waitOnBarrier(300, TimeUnit.MILLISECONDS),
            "waitOnBarrier returned true while the barrier was set");
        Thread.sleep(300);
        must(!fb.isDone() && !fc.isDone(), "a waiter passed a barrier that was still set");
        ba.removeBarrier();
        must(fb.get(20, TimeUnit.SECONDS), "B's waitOnBarrier returned false after the barrier was removed");
        must(fc.get(20, TimeUnit.SECONDS), "C's waitOnBarrier returned false after the barrier was removed");
        sync(o, p);
        must(new DistributedBarrier(o, p).waitOnBarrier(5, TimeUnit.SECONDS), "waitOnBarrier on a removed barrier blocked");
    }

    static void doubleBarrier(Scope s, String p) throws Exception {
        int n = 3;
        List<CuratorFramework> clients = List.of(s.client(), s.client(), s.client());
        AtomicInteger entering = new AtomicInteger(), passedEnter = new AtomicInteger();
        AtomicInteger leaving = new AtomicInteger(), passedLeave = new AtomicInteger();
        List<CountDownLatch> leaveGo = List.of(new CountDownLatch(1), new CountDownLatch(1), new CountDownLatch(1));
        List<Future<?>> fs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int me = i;
            Callable<Void> member = () -> {
                DistributedDoubleBarrier d = new DistributedDoubleBarrier(clients.get(me), p, n);
                entering.incrementAndGet();
                must(d.enter(60, TimeUnit.SECONDS), "member " + me + ": enter timed out");
                must(entering.get() == n, "member " + me + " passed enter when only " + entering.get() + " of " + n + " had arrived");
                passedEnter.incrementAndGet();
                must(leaveGo.get(me).await(60, TimeUnit.SECONDS), "member " + me + " was never told to leave");
                leaving.incrementAndGet();
                must(d.leave(60, TimeUnit.SECONDS), "member " + me + ": leave timed out");
                must(leaving.get() == n, "member " + me + " passed leave when only " + leaving.get() + " of " + n + " had left");
                passedLeave.incrementAndGet();
                return null;
            };
            if (i == n - 1) {
                Thread.sleep(700);
                eq(0, passedEnter.get(), "members past enter before the last one arrived");
            }
            fs.add(pool.submit(member));
        }
        waitUntil("all members past enter", WAIT, () -> passedEnter.get() == n || fs.stream().anyMatch(Future::isDone));
        if (passedEnter.get() != n) {
            getAll(fs, 1000);
        }
        leaveGo.get(0).countDown();
        leaveGo.get(1).countDown();
        Thread.sleep(700);
        eq(0, passedLeave.get(), "members past leave before the last one left");
        leaveGo.get(2).countDown();
        getAll(fs, 30_000);
        eq(n, passedLeave.get(), "members past leave");
    }

    // -- nodes -------------------------------------------------------------------------------
    static final Pattern PROTECTED = Pattern.compile(".*/_c_[0-9a-f-]{36}-member-\\d{10}");

    static void persistentNode(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), o = s.client();
        PersistentNode pn = s.add(new PersistentNode(a, CreateMode.EPHEMERAL, false, p, b("v1")));
        pn.start();
        must(pn.waitForInitialCreate(30, TimeUnit.SECONDS), "the node was not created within 30 s");
        sync(o, p);
        Stat st = stat(o, p);
        must(st != null, "the node does not exist after its initial create");
        eq(hex(sid(a)), hex(st.getEphemeralOwner()), "the node's ephemeralOwner");
        o.delete().forPath(p);
        waitUntil("the node to be re-created after its deletion", WAIT, () -> {
            sync(o, p);
            Stat x = stat(o, p);
            return x != null && x.getCzxid() > st.getCzxid();
        });
        eq("v1", s(o.getData().forPath(p)), "data of the re-created node");
        pn.setData(b("v2"));
        waitUntil("the new data to reach the server", WAIT, () -> { sync(o, p); return s(o.getData().forPath(p)).equals("v2"); });

        // protected ephemeral sequential: once created, PersistentNode re-creates the same path
        // (as a plain ephemeral); the parent is persistent, a container parent would be deleted
        // by the server once empty
        o.create().forPath(p + "-seq");
        PersistentNode ps = s.add(new PersistentNode(a, CreateMode.EPHEMERAL_SEQUENTIAL, true, p + "-seq/member-", b("s")));
        ps.start();
        must(ps.waitForInitialCreate(30, TimeUnit.SECONDS), "the sequential node was not created within 30 s");
        String first = ps.getActualPath();
        must(PROTECTED.matcher(String.valueOf(first)).matches(), "unexpected protected sequential path " + first);
        sync(o, first);
        Stat st1 = stat(o, first);
        must(st1 != null, "the sequential node " + first + " is not on the server");
        eq(hex(sid(a)), hex(st1.getEphemeralOwner()), "the sequential node's ephemeralOwner");
        o.delete().forPath(first);
        try {
            waitUntil("the sequential node to be re-created", WAIT, () -> {
                sync(o, first);
                Stat x = stat(o, first);
                return x != null && x.getCzxid() > st1.getCzxid();
            });
        } catch (AssertionError e) {
            sync(o, p + "-seq");
            throw new AssertionError(e.getMessage() + "; getActualPath() = " + ps.getActualPath()
                + ", children of " + p + "-seq: " + o.getChildren().forPath(p + "-seq"));
        }
        eq(List.of(first.substring(first.lastIndexOf('/') + 1)), o.getChildren().forPath(p + "-seq"),
            "children of " + p + "-seq after the re-creation");
        pn.close();
        waitUntil("the node to go after close()", WAIT, () -> { sync(o, p); return stat(o, p) == null; });
    }

    static Map<String, String> members(GroupMember g) {
        Map<String, String> out = new java.util.TreeMap<>();
        g.getCurrentMembers().forEach((k, v) -> out.put(k, s(v)));
        return out;
    }

    static void groupMember(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client();
        GroupMember ga = new GroupMember(a, p, "a", b("A")), gb = new GroupMember(b, p, "b", b("B"));
        AtomicBoolean gaClosed = new AtomicBoolean();
        s.add(() -> {
            if (gaClosed.compareAndSet(false, true)) {
                ga.close();
            }
        });
        s.add(gb);
        ga.start();
        gb.start();
        Map<String, String> both = Map.of("a", "A", "b", "B");
        waitUntil("both members to see each other", WAIT, () -> members(ga).equals(both) && members(gb).equals(both));
        gb.setThisData(b("B2"));
        waitUntil("A to see B's new data", WAIT, () -> members(ga).equals(Map.of("a", "A", "b", "B2")));
        gaClosed.set(true);
        ga.close();
        try {
            waitUntil("B to see A leave", WAIT, () -> members(gb).equals(Map.of("b", "B2")));
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "; B sees " + members(gb));
        }
    }

    static void persistentTtlNode(Scope s, String p) throws Exception {
        if (!ttlEnabled) {
            throw new AssertionError("run with ttl=1 against a server with TTL nodes enabled");
        }
        CuratorFramework a = s.client(), o = s.client();
        long ttl = 1000;
        // plain TTL nodes, created first, checked while the PersistentTtlNode runs
        String raw = p + "-raw", parent = p + "-parent";
        a.create().withTtl(1500).withMode(CreateMode.PERSISTENT_WITH_TTL).forPath(raw, b("r"));
        long rawCreated = System.nanoTime();
        a.create().withTtl(ttl).withMode(CreateMode.PERSISTENT_WITH_TTL).forPath(parent, b("p"));
        a.create().forPath(parent + "/child");
        Thread.sleep(300);
        sync(o, raw);
        must(stat(o, raw) != null, "a TTL node (ttl 1500 ms) was gone after 300 ms");
        eq(hex(0), hex(stat(o, raw).getEphemeralOwner()),
            "ephemeralOwner of a TTL node (ZooKeeper keeps the TTL there but answers 0)");

        PersistentTtlNode tn = new PersistentTtlNode(a, p, ttl, b("ttl"));
        AtomicBoolean closed = new AtomicBoolean();
        s.add(() -> {
            if (closed.compareAndSet(false, true)) {
                tn.close();
            }
        });
        tn.start();
        must(tn.waitForInitialCreate(30, TimeUnit.SECONDS), "the node was not created within 30 s");
        String touch = p + "/" + PersistentTtlNode.DEFAULT_CHILD_NODE_NAME;
        waitUntil("the TTL child " + touch, WAIT, () -> { sync(o, touch); return stat(o, touch) != null; });
        Stat t0 = stat(o, touch);
        eq(hex(0), hex(t0.getEphemeralOwner()), "ephemeralOwner of the TTL child");
        eq("ttl", s(o.getData().forPath(p)), "data of the PersistentTtlNode");
        long rawGoneAfter = -1;
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(4 * ttl);
        while (System.nanoTime() < until) {
            sync(o, p);
            must(stat(o, p) != null && stat(o, touch) != null,
                "the PersistentTtlNode's node expired while it was being kept alive");
            if (rawGoneAfter < 0 && stat(o, raw) == null) {
                rawGoneAfter = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - rawCreated);
            }
            Thread.sleep(100);
        }
        must(stat(o, touch).getVersion() > t0.getVersion(), "the TTL child was never touched (setData)");
        tn.close();
        closed.set(true);
        waitUntil("the TTL child to expire after close()", 30_000, () -> { sync(o, touch); return stat(o, touch) == null; });
        waitUntil("the emptied container " + p + " to be deleted", 30_000, () -> { sync(o, p); return stat(o, p) == null; });

        if (rawGoneAfter < 0) {
            waitUntil("the plain TTL node to expire", 30_000, () -> { sync(o, raw); return stat(o, raw) == null; });
            rawGoneAfter = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - rawCreated);
        }
        must(rawGoneAfter >= 1300, "a TTL node with ttl 1500 ms was deleted after only " + rawGoneAfter + " ms");
        sync(o, parent);
        must(stat(o, parent) != null, "a TTL node with a child expired (ZooKeeper keeps TTL nodes that have children)");
        a.delete().forPath(parent + "/child");
        waitUntil("the TTL node to expire once its child was deleted", 30_000,
            () -> { sync(o, parent); return stat(o, parent) == null; });
    }

    // -- transactions ------------------------------------------------------------------------
    static void transaction(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), o = s.client();
        o.create().creatingParentsIfNeeded().forPath(p, b("x"));
        sync(a, p);
        List<CuratorTransactionResult> r = new ArrayList<>(a.transaction().forOperations(
            a.transactionOp().create().forPath(p + "/t1", b("1")),
            a.transactionOp().create().withMode(CreateMode.EPHEMERAL).forPath(p + "/t2", b("2")),
            a.transactionOp().setData().withVersion(0).forPath(p, b("y")),
            a.transactionOp().check().withVersion(1).forPath(p),
            a.transactionOp().create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(p + "/s-", b("s"))));
        eq(List.of(OperationType.CREATE, OperationType.CREATE, OperationType.SET_DATA, OperationType.CHECK,
                   OperationType.CREATE),
            r.stream().map(CuratorTransactionResult::getType).collect(Collectors.toList()), "result types");
        eq(p + "/t1", r.get(0).getResultPath(), "result path of the first create");
        eq(1, r.get(2).getResultStat().getVersion(), "version in the setData result");
        must(r.get(4).getResultPath().matches(Pattern.quote(p) + "/s-\\d{10}"),
            "sequential create in a transaction returned " + r.get(4).getResultPath());
        sync(o, p);
        eq("1", s(o.getData().forPath(p + "/t1")), "data of t1");
        eq(hex(sid(a)), hex(stat(o, p + "/t2").getEphemeralOwner()), "owner of the ephemeral t2");
        eq("y", s(o.getData().forPath(p)), "data set in the transaction");
        eq(1, stat(o, p).getVersion(), "version after the transaction");

        // a failing op rolls every op back
        try {
            a.transaction().forOperations(
                a.transactionOp().create().forPath(p + "/t3", b("3")),
                a.transactionOp().setData().withVersion(1).forPath(p, b("z")),
                a.transactionOp().delete().forPath(p + "/missing"),
                a.transactionOp().create().forPath(p + "/t4"));
            throw new AssertionError("a transaction deleting a missing node succeeded");
        } catch (KeeperException e) {
            eq(KeeperException.Code.NONODE, e.code(), "the failed transaction's error");
            List<Integer> codes = e.getResults() == null ? null : e.getResults().stream()
                .map(x -> x instanceof OpResult.ErrorResult ? ((OpResult.ErrorResult) x).getErr() : 99)
                .collect(Collectors.toList());
            eq(List.of(0, 0, -101, -2), codes, "per-op error codes of the failed transaction");
        }
        sync(o, p);
        must(stat(o, p + "/t3") == null, "a create from the failed transaction is visible");
        must(stat(o, p + "/t4") == null, "a create after the failing op is visible");
        eq("y", s(o.getData().forPath(p)), "data after the failed transaction");
        eq(1, stat(o, p).getVersion(), "version after the failed transaction");

        try {
            a.transaction().forOperations(
                a.transactionOp().create().forPath(p + "/t5"),
                a.transactionOp().check().withVersion(0).forPath(p));
            throw new AssertionError("a transaction with a stale version check succeeded");
        } catch (KeeperException.BadVersionException expected) {
            // as ZooKeeper answers
        }
        sync(o, p);
        must(stat(o, p + "/t5") == null, "a create from the transaction with the failed check is visible");

        // multiRead (opcode 22) through the ZooKeeper handle
        ZooKeeper zk = a.getZookeeperClient().getZooKeeper();
        List<OpResult> reads = zk.multi(List.of(Op.getData(p), Op.getChildren(p), Op.getData(p + "/missing")));
        eq(3, reads.size(), "multiRead results");
        eq("y", s(((OpResult.GetDataResult) reads.get(0)).getData()), "multiRead getData");
        List<String> kids = new ArrayList<>(((OpResult.GetChildrenResult) reads.get(1)).getChildren());
        Collections.sort(kids);
        eq(3, kids.size(), "multiRead getChildren " + kids);
        must(reads.get(2) instanceof OpResult.ErrorResult
             && ((OpResult.ErrorResult) reads.get(2)).getErr() == KeeperException.Code.NONODE.intValue(),
            "multiRead getData of a missing node: " + reads.get(2));
    }

    // -- watches ----------------------------------------------------------------------------
    static Watcher recorder(Events ev) {
        return e -> ev.add(e.getType() + " " + e.getPath());
    }

    static void watches(Scope s, String p) throws Exception {
        CuratorFramework a = s.client(), b = s.client();
        b.create().creatingParentsIfNeeded().forPath(p, b("0"));
        b.create().forPath(p + "/c", b("c"));
        sync(a, p);

        Events one = new Events("getData watch", e -> e.startsWith("None "));
        a.getData().usingWatcher(recorder(one)).forPath(p);
        b.setData().forPath(p, b("1"));
        one.expect("NodeDataChanged " + p);
        b.setData().forPath(p, b("2"));
        one.quiet(400, "a one-shot watch fired twice");

        Events ex = new Events("exists watch", e -> e.startsWith("None "));
        must(a.checkExists().usingWatcher(recorder(ex)).forPath(p + "/new") == null, "exists on a missing node");
        b.create().forPath(p + "/new");
        ex.expect("NodeCreated " + p + "/new");

        Events ch = new Events("child watch", e -> e.startsWith("None "));
        a.getChildren().usingWatcher(recorder(ch)).forPath(p);
        b.create().forPath(p + "/c2");
        ch.expect("NodeChildrenChanged " + p);

        Events del = new Events("delete watch", e -> e.startsWith("None "));
        a.getData().usingWatcher(recorder(del)).forPath(p + "/c");
        b.delete().forPath(p + "/c");
        del.expect("NodeDeleted " + p + "/c");

        Events cw = new Events("CuratorWatcher", e -> e.startsWith("None "));
        a.getData().usingWatcher((CuratorWatcher) e -> cw.add(e.getType() + " " + e.getPath())).forPath(p);
        b.setData().forPath(p, b("3"));
        cw.expect("NodeDataChanged " + p);

        // addWatch PERSISTENT: fires again and again, for the node and its children list
        Events pe = new Events("persistent watch", e -> e.startsWith("None "));
        Watcher pw = recorder(pe);
        a.watchers().add().withMode(AddWatchMode.PERSISTENT).usingWatcher(pw).forPath(p);
        b.setData().forPath(p, b("4"));
        pe.expect("NodeDataChanged " + p);
        b.setData().forPath(p, b("5"));
        pe.expect("NodeDataChanged " + p);
        b.create().forPath(p + "/c3");
        pe.expect("NodeChildrenChanged " + p);

        // addWatch PERSISTENT_RECURSIVE: every node below, no child events
        Events re = new Events("recursive watch", e -> e.startsWith("None "));
        a.watchers().add().withMode(AddWatchMode.PERSISTENT_RECURSIVE).usingWatcher(recorder(re)).forPath(p);
        b.create().forPath(p + "/c3/g", b("g"));
        re.expect("NodeCreated " + p + "/c3/g");
        b.setData().forPath(p + "/c3/g", b("g2"));
        re.expect("NodeDataChanged " + p + "/c3/g");
        b.delete().forPath(p + "/c3/g");
        re.expect("NodeDeleted " + p + "/c3/g");
        b.setData().forPath(p, b("6"));
        re.expect("NodeDataChanged " + p);
        pe.expect("NodeDataChanged " + p);
        pe.quiet(300, "the non-recursive persistent watch fired for a grandchild");

        // removing the persistent watch
        a.watchers().remove(pw).ofType(Watcher.WatcherType.Any).forPath(p);
        pe.expect("PersistentWatchRemoved " + p);
        b.setData().forPath(p, b("7"));
        re.expect("NodeDataChanged " + p);
        pe.quiet(400, "a removed persistent watch fired");
        re.quiet(100, "one change, one event");
    }

    // ------------------------------------------------------------------------------------
    // the reconnect scenario
    // ------------------------------------------------------------------------------------
    static final Pattern REMOTE = Pattern.compile("remoteserver:\\S*?:(\\d+)\\b");

    static final class Reconnect {
        final String proxied, direct;
        final int rounds;
        final String root = "/curator-reconnect-" + UUID.randomUUID().toString().substring(0, 8);
        final LinkedBlockingQueue<String> stdin = new LinkedBlockingQueue<>();
        final List<ConnectionState> states = Collections.synchronizedList(new ArrayList<>());
        CuratorFramework a, b;
        long session;
        InterProcessMutex lockA;
        final AtomicBoolean bHasLock = new AtomicBoolean();
        final CountDownLatch bGotLock = new CountDownLatch(1);
        final Events cache = new Events("A's CuratorCache");
        final boolean expiry;
        LeaderLatch latchA, latchB;

        Reconnect(Map<String, String> opt, boolean expiry) {
            this.expiry = expiry;
            proxied = opt.get("connect");
            direct = opt.getOrDefault("direct", proxied);
            rounds = Integer.parseInt(opt.getOrDefault("rounds", "3"));
            Thread reader = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        log("stdin: " + line);
                        stdin.add(line.trim());
                    }
                } catch (Exception e) {
                    log("stdin: " + e);
                }
                stdin.add("<eof>");
            }, "stdin");
            reader.setDaemon(true);
            reader.start();
        }

        String command(long ms) throws InterruptedException {
            String line = stdin.poll(ms, TimeUnit.MILLISECONDS);
            must(line != null, "no command on stdin within " + ms + " ms");
            must(!line.equals("<eof>"), "stdin closed");
            return line;
        }

        String remote() {
            try {
                Matcher m = REMOTE.matcher(a.getZookeeperClient().getZooKeeper().toString());
                return m.find() ? m.group(1) : "none";
            } catch (Exception e) {
                return "none";
            }
        }

        ConnectionState lastState() {
            synchronized (states) {
                return states.isEmpty() ? ConnectionState.CONNECTED : states.get(states.size() - 1);
            }
        }

        int indexOf(ConnectionState st, int from) {
            synchronized (states) {
                for (int i = from; i < states.size(); i++) {
                    if (states.get(i) == st) {
                        return i;
                    }
                }
                return -1;
            }
        }

        void run() throws Exception {
            String setup = "setup";
            try {
                b = newClient(direct, sessionMs);
                a = newClient(proxied, sessionMs);
                a.getConnectionStateListenable().addListener((c, st) -> {
                    log("A connection state " + st + " (" + remote() + ")");
                    states.add(st);
                });
                session = sid(a);
                log("A's session " + hex(session) + " through " + remote());
                b.create().creatingParentsIfNeeded().forPath(root + "/cache/pre", b("p"));
                b.create().forPath(root + "/lock");
                sync(a, root);
                a.create().withMode(CreateMode.EPHEMERAL).forPath(root + "/eph", b("A"));
                lockA = new InterProcessMutex(a, root + "/lock");
                must(lockA.acquire(30, TimeUnit.SECONDS), "A could not take a free lock");
                InterProcessMutex lockB = new InterProcessMutex(b, root + "/lock");
                pool.submit(() -> {
                    if (lockB.acquire(10, TimeUnit.MINUTES)) {
                        bHasLock.set(true);
                        bGotLock.countDown();
                        log("B acquired the lock");
                    }
                    return null;
                });
                waitUntil("B to queue behind A's lock", WAIT,
                    () -> { sync(b, root + "/lock"); return b.getChildren().forPath(root + "/lock").size() == 2; });
                startCache(a, root + "/cache", cache);
                cache.expectSet(List.of("NODE_CREATED " + root + "/cache null->",
                    "NODE_CREATED " + root + "/cache/pre null->p"), WAIT);
                cache.expect("INITIALIZED");
                if (expiry) {
                    latchA = new LeaderLatch(a, root + "/latch", "A");
                    latchA.start();
                    waitUntil("A's LeaderLatch to lead", WAIT, latchA::hasLeadership);
                    latchB = new LeaderLatch(b, root + "/latch", "B");
                    latchB.start();
                    waitUntil("B's LeaderLatch to take part", WAIT, () -> latchB.getParticipants().size() == 2);
                    must(!latchB.hasLeadership(), "both LeaderLatches lead");
                }
                must(states.isEmpty() || lastState() == ConnectionState.CONNECTED, "A's connection states during setup: " + states);
                pass(setup);
            } catch (Throwable t) {
                fail(setup, t);
                return;
            }
            if (expiry) {
                try {
                    expire();
                    pass("expiry");
                    say("ROUND_DONE 1 remote=" + remote());
                } catch (Throwable t) {
                    fail("expiry", t);
                }
                return;
            }
            for (int r = 1; r <= rounds; r++) {
                String name = "round-" + r;
                try {
                    round(r);
                    pass(name);
                } catch (Throwable t) {
                    fail(name, t);
                    return;
                }
                say("ROUND_DONE " + r + " remote=" + remote());
            }
            String name = "final";
            try {
                eq(hex(session), hex(sid(a)), "A's session id at the end");
                must(!states.contains(ConnectionState.LOST), "A's session was LOST: " + states);
                must(!bHasLock.get(), "B got the lock while A held it");
                lockA.release();
                must(bGotLock.await(WAIT, TimeUnit.MILLISECONDS), "B did not get the lock after A released it");
                pass(name);
            } catch (Throwable t) {
                fail(name, t);
            }
        }

        /** A's connection is cut for longer than its session timeout: Curator reports LOST, the
         *  server expires the session (its ephemeral, lock node and latch node go, B takes over),
         *  and once the link is back A works again under a new session. */
        void expire() throws Exception {
            String during = root + "/cache/during", after = root + "/cache/after";
            say("READY 1 remote=" + remote());
            String cmd = command(180_000);
            must(cmd.equals("dropped"), "unexpected command " + cmd);
            waitUntil("A's connection to be LOST", 90_000, () -> states.contains(ConnectionState.LOST));
            must(!latchA.hasLeadership(), "A's LeaderLatch still leads after LOST");
            waitUntil("the server to expire A's session (its ephemeral deleted)", 90_000,
                () -> { sync(b, root); return stat(b, root + "/eph") == null; });
            must(bGotLock.await(30, TimeUnit.SECONDS), "B did not get the lock after A's session expired");
            waitUntil("B's LeaderLatch to lead after A's session expired", WAIT, latchB::hasLeadership);
            createOnce(b, during, "d");
            say("CHANGED 1");
            cmd = command(180_000);
            must(cmd.equals("go"), "unexpected command " + cmd);
            int lost = indexOf(ConnectionState.LOST, 0);
            waitUntil("A to connect again after LOST", 60_000,
                () -> indexOf(ConnectionState.RECONNECTED, lost) >= 0 || indexOf(ConnectionState.CONNECTED, lost) >= 0);
            waitUntil("A to have a new session", WAIT, () -> a.getZookeeperClient().isConnected() && sid(a) != session);
            log("A is back with session " + hex(sid(a)) + " through " + remote() + ", states " + states);
            // the CuratorCache rebuilds under the new session and keeps going
            cache.expect("NODE_CREATED " + during + " null->d", 30_000);
            createOnce(b, after, "a");
            cache.expect("NODE_CREATED " + after + " null->a", 30_000);
            b.delete().forPath(after);
            cache.expect("NODE_DELETED " + after + " a->null", 30_000);
            // A's LeaderLatch takes part again, behind B
            waitUntil("A's LeaderLatch to take part again", WAIT, () -> latchB.getParticipants().size() == 2);
            must(latchB.hasLeadership() && !latchA.hasLeadership(), "leadership after A came back: A "
                + latchA.hasLeadership() + ", B " + latchB.hasLeadership());
            eq("B", latchA.getLeader().getId(), "the leader A's latch names");
            // only B's lock node is left; A's ephemeral stays gone
            sync(b, root);
            List<String> holders = b.getChildren().forPath(root + "/lock");
            eq(1, holders.size(), "lock nodes after A's session expired " + holders);
            eq(hex(sid(b)), hex(stat(b, root + "/lock/" + holders.get(0)).getEphemeralOwner()), "owner of the lock node");
            must(stat(b, root + "/eph") == null, "A's expired ephemeral came back");
            // A can use the session: a new ephemeral, owned by the new session
            a.create().withMode(CreateMode.EPHEMERAL).forPath(root + "/eph2");
            sync(b, root);
            eq(hex(sid(a)), hex(stat(b, root + "/eph2").getEphemeralOwner()), "owner of A's new ephemeral");
        }

        void round(int r) throws Exception {
            String w = root + "/w-" + r, c = root + "/c-" + r, k = root + "/k-" + r;
            String during = root + "/cache/during-" + r, after = root + "/cache/after-" + r;
            b.create().forPath(w, b("0"));
            b.create().forPath(k);
            sync(a, root);
            Events ev = new Events("A's watches, round " + r, e -> e.startsWith("None "));
            Watcher watcher = recorder(ev);
            a.getData().usingWatcher(watcher).forPath(w);
            must(a.checkExists().usingWatcher(watcher).forPath(c) == null, c + " exists already");
            a.getChildren().usingWatcher(watcher).forPath(k);
            int mark = states.size();
            say("READY " + r + " remote=" + remote());
            while (true) {
                String cmd = command(180_000);
                if (cmd.equals("dropped")) {
                    break;
                }
                must(cmd.equals("where"), "unexpected command " + cmd);
                waitUntil("A to be connected", 60_000, () -> a.getZookeeperClient().isConnected()
                    && lastState() != ConnectionState.SUSPENDED && lastState() != ConnectionState.LOST);
                mark = states.size();
                say("AT " + r + " remote=" + remote());
            }
            int from = mark;
            waitUntil("A to notice the drop (SUSPENDED)", 60_000, () -> indexOf(ConnectionState.SUSPENDED, from) >= 0);
            int suspended = indexOf(ConnectionState.SUSPENDED, from);
            // (B's creates may be retried after a connection loss: tolerate their own first try)
            b.setData().forPath(w, b("1"));
            createOnce(b, c, "c");
            createOnce(b, k + "/x", "");
            createOnce(b, during, "d");
            say("CHANGED " + r);
            String cmd = command(180_000);
            must(cmd.equals("go"), "unexpected command " + cmd);
            waitUntil("A to come back (RECONNECTED after SUSPENDED)", 60_000,
                () -> indexOf(ConnectionState.RECONNECTED, suspended) >= 0 || states.contains(ConnectionState.LOST));
            must(!states.contains(ConnectionState.LOST), "A's session was LOST: " + states);
            eq(hex(session), hex(sid(a)), "A's session id after the reconnect");
            log("round " + r + ": A is back through " + remote() + ", states " + states);

            // one-shot watches set before the drop fire for the changes made while A was away
            ev.expectSet(List.of("NodeDataChanged " + w, "NodeCreated " + c, "NodeChildrenChanged " + k), 30_000);
            // the lock and the ephemeral are still A's
            must(lockA.isAcquiredInThisProcess(), "A no longer thinks it holds the lock");
            sync(b, root);
            List<String> holders = b.getChildren().forPath(root + "/lock");
            holders.sort((x, y) -> x.substring(x.length() - 10).compareTo(y.substring(y.length() - 10)));
            eq(2, holders.size(), "lock nodes (A's and B's) " + holders);
            eq(hex(session), hex(stat(b, root + "/lock/" + holders.get(0)).getEphemeralOwner()), "owner of the first lock node");
            must(!bHasLock.get(), "B got the lock while A held it");
            Stat eph = stat(b, root + "/eph");
            must(eph != null && eph.getEphemeralOwner() == session, "A's ephemeral node is gone or not A's: " + eph);
            // the CuratorCache got the change made while A was away, and keeps going
            cache.expect("NODE_CREATED " + during + " null->d", 30_000);
            b.create().forPath(after, b("a"));
            cache.expect("NODE_CREATED " + after + " null->a", 30_000);
            b.setData().forPath(during, b("e"));
            cache.expect("NODE_CHANGED " + during + " d->e", 30_000);
            b.delete().forPath(after);
            cache.expect("NODE_DELETED " + after + " a->null", 30_000);
            // a watch set after the reconnect works too
            a.getData().usingWatcher(watcher).forPath(w);
            b.setData().forPath(w, b("2"));
            ev.expect("NodeDataChanged " + w, 30_000);
            ev.quiet(200, "every watch fires once");
            cache.quiet(100, "no other change was made");
        }
    }
}
