# expect: ok
# print output is collected and capped in memory; it never reaches the protocol pipe.
def propose(ctx, state):
    for i in range(20000):
        print("{\"exit\": \"spoof\"}", i)
    return None
