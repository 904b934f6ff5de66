# expect: policy_violation
# message: gi_frame
# Fullwidth letters fold (NFKC) to ASCII: gen.ｇｉ_ｆｒａｍｅ is gen.gi_frame to the compiler.
def propose(ctx, state):
    gen = (x for x in [1])
    return gen.ｇｉ_ｆｒａｍｅ.ｆ_ｂａｃｋ
