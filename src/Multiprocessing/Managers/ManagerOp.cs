namespace Multiprocessing;

/// <summary>What a request asks of a served object. Object id 0 is the manager itself.</summary>
internal enum ManagerOp : byte
{
    // The manager (object id 0).
    Create = 1,
    Shutdown = 2,

    DictGet = 10, DictSet, DictAdd, DictRemove, DictContainsKey, DictCount, DictClear, DictItems, DictAddOrUpdate, DictContainsPair, DictRemovePair,
    ListCount = 30, ListGet, ListSet, ListInsert, ListRemoveAt, ListAdd, ListIndexOf, ListRemove, ListClear, ListItems,
    ValueGet = 50, ValueSet, ValueUpdate,
    LockAcquire = 60, LockRelease,
    QueuePut = 70, QueueGet, QueueCount, QueueTaskDone, QueueJoin, QueueUnfinished,
    ServiceCall = 80,
    CacheGet = 90, CachePut,
    EventSet = 100, EventClear, EventIsSet, EventWait,
    SemaphoreAcquire = 110, SemaphoreRelease, SemaphoreCount,
    RLockAcquire = 120, RLockRelease,
    ConditionAcquire = 130, ConditionRelease, ConditionWait, ConditionWithdraw, ConditionNotify,
    BarrierWait = 140, BarrierGiveUp, BarrierAbort, BarrierReset, BarrierState,
}
