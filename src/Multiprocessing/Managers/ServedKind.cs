namespace Multiprocessing;

/// <summary>The kinds of object a manager serves.</summary>
internal enum ServedKind : byte { Dictionary = 1, List = 2, Value = 3, Lock = 4, Queue = 5, Service = 6, Cache = 7, Event = 8, Semaphore = 9, RLock = 10, Condition = 11, Barrier = 12, Array = 13, JoinableQueue = 14 }
